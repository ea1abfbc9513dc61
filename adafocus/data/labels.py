"""Checks that a dataset's labels fit a model, before any training starts."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from adafocus.config import ConfigError

MAX_LISTED = 5  # offending splits named in one message


def label_range(dataset: Any) -> tuple[int, int, int | None] | None:
    """``(min label, max label, number of class names or None)`` of a dataset, read without decoding
    a single video: from a synthetic split's ``clips.labels``, a :class:`VideoFolderDataset`'s
    ``items`` and ``classes``, or a ``labels`` attribute. None for an empty dataset or one of
    unknown kind (which would have to be loaded in full to find out)."""
    clips = getattr(dataset, "clips", None)
    if clips is not None and getattr(clips, "labels", None) is not None:
        labels = torch.as_tensor(clips.labels)
        names = getattr(dataset, "class_names", None)
    elif getattr(dataset, "items", None) is not None:
        labels = torch.as_tensor([label for _, label in dataset.items], dtype=torch.int64)
        names = getattr(dataset, "classes", None)
    elif getattr(dataset, "labels", None) is not None:
        labels = torch.as_tensor(dataset.labels)
        names = getattr(dataset, "classes", None)
    else:
        return None
    if labels.numel() == 0:
        return None
    lo, hi = (int(v) for v in torch.aminmax(labels.reshape(-1).to(torch.int64)))
    return lo, hi, (len(names) if names is not None else None)


def check_labels_fit(splits: Mapping[str, Any], num_classes: int) -> None:
    """Raise :class:`ConfigError` when a split has a label outside ``[0, num_classes)`` or names more
    classes than the model has outputs (``model.num_classes``); otherwise training would stop at
    the first such batch with torch's ``IndexError: Target 5 is out of bounds``."""
    problems = []
    for name, dataset in splits.items():
        found = label_range(dataset)
        if found is None:
            continue
        lo, hi, named = found
        if lo < 0:
            problems.append(f"splits[{name!r}] has a negative label ({lo})")
        elif hi >= num_classes:
            problems.append(f"splits[{name!r}] has labels up to {hi}")
        elif named is not None and named > num_classes:
            problems.append(f"splits[{name!r}] has {named} classes")
    if problems:
        listed = "; ".join(problems[:MAX_LISTED]) + ("; ..." if len(problems) > MAX_LISTED else "")
        raise ConfigError(f"model.num_classes: expected at least as many classes as the data's labels "
                          f"(0 .. {num_classes - 1} for {num_classes}), but {listed}; set model.num_classes to the "
                          "data's number of classes")
