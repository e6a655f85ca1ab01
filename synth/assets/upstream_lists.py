"""Selection lists of the reference data directory (shared/data), so that the upstream path of
`synth assets fetch` picks the same files by name. The lists are package data
(synth/data/upstream/*.txt, one entry a line, `#` comments), generated once from the reference
mirror's own manifests (cmu_mocap/index/clips_main.csv, clothing/manifest.csv,
backgrounds/manifest.csv); do not edit them by hand. They record *which* upstream files were
chosen (the choice itself was made by eye, see each set's SOURCE.md); they cannot say why, and
re-encoded images fetched from upstream are not byte-identical to the mirror's.
"""
from __future__ import annotations

from synth.resources import read_data_text


def _lines(name: str) -> list[str]:
    text = read_data_text(f"upstream/{name}")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


CMU_CLIPS = _lines("cmu_clips.txt")                 # "clip_id md5 bytes" of the original AMC files
CLOTHING_CC0 = _lines("clothing_cc0.txt")           # paths inside alexeygrigorev/clothing-dataset-small
VITON_HD_IDS = _lines("viton_hd_ids.txt")           # cloth ids of the VITON-HD fork
INRIA_NEGATIVES = _lines("inria_negatives.txt")     # INRIA Person negative image numbers
LSP_DPM_NEGATIVES = _lines("lsp_dpm_negatives.txt") # LSP dpm-neg crop names
