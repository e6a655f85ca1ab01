"""synth: synthetic training data for monocular 3D human pose estimation."""
__version__ = "0.1.0"
