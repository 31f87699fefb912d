"""AuTR (audio-aware query-enhanced transformer) for audio-visual segmentation."""
