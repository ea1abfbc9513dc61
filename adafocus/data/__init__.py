"""Data: the synthetic benchmark with ground truth (and, later, folders of real videos)."""

from adafocus.data.synthetic import (ClipSet, SyntheticVideoDataset, generate_clip, generate_clips, generate_split,
                                     load_split, load_splits, redundancy_summary)

__all__ = ["ClipSet", "SyntheticVideoDataset", "generate_clip", "generate_clips", "generate_split", "load_split",
           "load_splits", "redundancy_summary"]
