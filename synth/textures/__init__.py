"""Body textures: skin, simple garment mapping (clothing transfer comes in its own stage)."""
