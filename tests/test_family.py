"""adafocus.family: what ``make family`` trains, as jobs (the training itself is measured by the real run)."""

from __future__ import annotations

from adafocus.family import X3D_METHODS, family_jobs, member_config
from adafocus.jobs import chain_seconds
from adafocus.pretrain_x3d import x3d_pretrain_key


def test_every_model_waits_for_the_pretraining_it_reads():
    jobs = family_jobs(tsm_seeds=(0, 2), v1_seeds=(1,), member=print)
    by_name = {j.name: j for j in jobs}
    assert by_name["uni_adafocus_tsn seed 2"].fn is print and by_name["uni_adafocus_tsn seed 2"].args == (
        "uni_adafocus_tsn", "small_motion", 2)
    assert {n for n in by_name if "seed" in n} == {"uni_adafocus_tsm seed 0", "uni_adafocus_tsn seed 0",
                                                  "uni_adafocus_tsm seed 2", "uni_adafocus_tsn seed 2",
                                                  "adafocus_v1 seed 1"}
    assert by_name["uni_adafocus_tsn seed 2"].after == ("pretrain", "data motion")
    assert by_name["adafocus_v1 seed 1"].after == ("pretrain",)
    assert all(by_name[m].after == ("pretrain_x3d",) for m in X3D_METHODS)
    assert by_name["pretrain"].after == by_name["pretrain_x3d"].after == ("data",)  # the digits and the images


def test_both_benchmarks_share_one_2d_pretraining():
    from adafocus.config import get_config
    from adafocus.family import FAMILY_PRESET, TSM_PRESET
    from adafocus.pretrain import pretrain_key

    assert pretrain_key(get_config(FAMILY_PRESET)) == pretrain_key(get_config(TSM_PRESET))


def test_the_x3d_chain_starts_first_after_the_data():
    priority = chain_seconds(family_jobs())
    after_data = {n: p for n, p in priority.items() if not n.startswith("data")}
    assert max(after_data, key=after_data.get) == "pretrain_x3d"
    assert max(priority, key=priority.get) == "data"


def test_both_x3ds_share_one_pretraining_and_one_budget():
    cube, whole = (member_config(m, "small") for m in X3D_METHODS)
    assert x3d_pretrain_key(cube) == x3d_pretrain_key(whole)
    assert cube.pretrain.epochs == whole.pretrain.epochs == 24
    assert cube.train.epochs == whole.train.epochs == 16
