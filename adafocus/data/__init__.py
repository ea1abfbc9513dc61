"""Data: the synthetic benchmark with ground truth, folders of real videos, export to mp4."""

from adafocus.data.export import export_clips, write_mp4
from adafocus.data.synthetic import (ClipSet, SyntheticVideoDataset, generate_clip, generate_clips, generate_split,
                                     load_split, load_splits, redundancy_summary)
from adafocus.data.video import (VideoError, VideoFolderDataset, read_annotations, read_frames,
                                 sample_segment_indices, video_num_frames)

__all__ = ["ClipSet", "SyntheticVideoDataset", "generate_clip", "generate_clips", "generate_split", "load_split",
           "load_splits", "redundancy_summary", "export_clips", "write_mp4", "VideoError", "VideoFolderDataset",
           "read_annotations", "read_frames", "sample_segment_indices", "video_num_frames"]
