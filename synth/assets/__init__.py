"""Asset sets (MoCap, LSP, clothing, backgrounds, HDRIs, joint limits): fetching them into the data
directory and checking what is there. See synth.assets.manifest for the sources."""
from synth.assets.download import AssetError
from synth.assets.fetch import FetchResult, fetch
from synth.assets.manifest import SET_NAMES, SETS
from synth.assets.verify import VerifyReport, require, verify, write_index

__all__ = ["AssetError", "FetchResult", "fetch", "SET_NAMES", "SETS", "VerifyReport", "require", "verify",
           "write_index"]
