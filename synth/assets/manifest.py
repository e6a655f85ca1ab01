"""Where each asset set comes from upstream and how a download becomes the data-directory layout.

The target layout is the reference data directory's (shared/data, see each set's SOURCE.md):

    cmu_mocap/asf/SS.asf, cmu_mocap/amc/SS/SS_TT.amc, cmu_mocap/index/*.csv|*.xls
    lsp/images/im0001..im1000.jpg, lsp/joints_train.mat (3x14x1000), lsp/README_upstream.txt
    clothing/clothing_dataset_cc0/{upper,lower}/<class>/<uuid>.jpg, clothing/viton_hd/{cloth,cloth_mask}/,
        clothing/manifest.csv
    backgrounds/inria_person_negatives/inria_neg_NNNNN.jpg, backgrounds/lsp_dpm_negatives/imNNNN-rescaled.jpg,
        backgrounds/manifest.csv
    hdri/<name>_1k.hdr
    akhter_black_joint_limits/{staticPose,jointAngleModel,jointAngleModel_v2,skeleton_17Pts}.mat

Each set is a list of `Source`s. A source is one URL (with alternatives tried in order): either a
single file saved under `dest`, or an archive whose members are picked and renamed by `Rule`s
(regular expression on the member path -> destination template), optionally passed through a named
`transform` (re-encoding, slicing). Destinations are relative to the data directory.

How faithful the upstream path is, per set (the mirror path copies shared/data byte for byte):
- cmu_mocap: exact. Per-clip files from mocap.cs.cmu.edu are byte-identical to the mirror's (their
  md5s are checked). `index/clips_main.csv` is regenerated from the files (same leading columns;
  the origin-repo columns name the CMU URL instead); `cmu_index_descriptions.csv` (a cell dump of
  the .xls) is not regenerated - nothing needs it.
- lsp: exact. The official archive holds all 2000 images; the train half (1-1000) is kept and
  joints.mat is sliced to [:, :, :1000] like the mirror's joints_train.mat.
- clothing, backgrounds: same files by name (the hand-picked selection lists in `upstream_lists`
  were recorded from the mirror's manifests), but the images are re-encoded here (JPEG q90/q92,
  long side <= 512 px, Lanczos), so the bytes differ slightly from the mirror's. The selection
  itself (made by eye from contact sheets) cannot be re-derived from upstream; only replayed.
  The INRIA Person negatives come from the GitHub copy that carries Yang & Ramanan's numbering
  (00615-01832): INRIA's own INRIAPerson.tar (http://pascal.inrialpes.fr/data/human/) names the
  negatives differently, so the hand-picked subset cannot be matched in it by name.
- hdri: same assets by name from Poly Haven's CDN; Poly Haven re-exports assets from time to time,
  so the bytes may differ from the mirror's copy (from pmndrs/drei-assets, tried second).
- akhter_black_joint_limits: the authors' project page (http://poseprior.is.tue.mpg.de) needs a
  sign-up, so the files come from a GitHub copy of their MATLAB release (byte-identical to the mirror).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from synth.assets import upstream_lists as lists

SET_NAMES = ("cmu_mocap", "lsp", "clothing", "backgrounds", "hdri", "akhter_black_joint_limits",
             "makehuman_assets")


@dataclass(frozen=True)
class Rule:
    """Pick archive members whose path (after the archive's top folder when `strip_top`) matches
    `pattern` fully; save them as `dest` (a template filled with the match's groups, `{1}`...).

    `only`: when set, a match is kept only if its filled-in destination is in it (the hand-picked
    subsets). `transform`: name of a function in synth.assets.transforms applied to the bytes.
    """
    pattern: str
    dest: str
    transform: str = "copy"
    only: frozenset[str] | None = None


@dataclass(frozen=True)
class Source:
    urls: tuple[str, ...]                 # tried in order; the first that works is used
    kind: str = "file"                    # file | zip
    dest: str | None = None               # for kind=file: where it goes in the data directory
    md5: str | None = None                # for kind=file: expected md5 when known (exact copies)
    size: int | None = None               # for kind=file: expected size in bytes when known
    rules: tuple[Rule, ...] = ()          # for archives
    strip_top: bool = False               # archives from GitHub wrap everything in REPO-COMMIT/
    optional: bool = False                # a failure is reported but does not fail the set


@dataclass(frozen=True)
class Expect:
    """What verification needs of a set (minimum counts; the reference mirror's counts for info)."""
    globs: dict[str, int]                 # glob relative to the set folder -> minimum matches
    reference_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetSet:
    name: str
    title: str
    license: str
    sources: tuple[Source, ...]
    expect: Expect
    post: tuple[str, ...] = ()            # names of functions in synth.assets.transforms run after extraction
    notes: str = ""


# ----------------------------------------------------------------------------------------------
# CMU motion capture

CMU_BASE = "http://mocap.cs.cmu.edu/subjects"
CMU_CLIPS = [tuple(line.split()) for line in lists.CMU_CLIPS]       # (clip_id, md5, bytes)
CMU_SUBJECTS = sorted({c[0].split("_")[0] for c in CMU_CLIPS})
_HAHNE_XLS = ("https://raw.githubusercontent.com/ScarletAnnaZ/CLS-Motion-Library-Project/"
              "28370ab0601bea95de2d8da525eba2e2f4467538/cmu-mocap-index-spreadsheet.xls")
_CMU_LISTING = ("https://raw.githubusercontent.com/DragonForgedTheArtist/IClone-CMU-Mocap/"
                "79529f962ade3274163af53cd92179cee2ed9407/CMU%20data.csv")


def _cmu_sources() -> tuple[Source, ...]:
    out = [Source(urls=(f"{CMU_BASE}/{s}/{s}.asf",), dest=f"cmu_mocap/asf/{s}.asf") for s in CMU_SUBJECTS]
    for clip, md5, size in CMU_CLIPS:
        subject = clip.split("_")[0]
        out.append(Source(urls=(f"{CMU_BASE}/{subject}/{clip}.amc",),
                          dest=f"cmu_mocap/amc/{subject}/{clip}.amc", md5=md5, size=int(size)))
    out.append(Source(urls=(_CMU_LISTING,), dest="cmu_mocap/index/cmu_database_listing.csv"))
    out.append(Source(urls=(_HAHNE_XLS,), dest="cmu_mocap/index/cmu-mocap-index-spreadsheet.xls", optional=True))
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Leeds Sports Pose

LSP_TRAIN = frozenset(f"lsp/images/im{i:04d}.jpg" for i in range(1, 1001))

# ----------------------------------------------------------------------------------------------
# Clothing

CLOTHING_SMALL_COMMIT = "11961516512414bf9f6c150a832cfd21b54a6b54"
VITON_FORK_COMMIT = "7df013e1b0601d1b7418e5565493b20bb5a00002"
UPPER_CLASSES = ("t-shirt", "longsleeve", "shirt", "outwear")
LOWER_CLASSES = ("pants", "shorts", "skirt")


def _clothing_dest(src: str) -> str:
    cls, name = src.split("/")[1], src.split("/")[2]
    side = "upper" if cls in UPPER_CLASSES else "lower"
    return f"clothing/clothing_dataset_cc0/{side}/{cls}/{name}"


CLOTHING_KEEP = frozenset(_clothing_dest(p) for p in lists.CLOTHING_CC0)

# ----------------------------------------------------------------------------------------------
# Backgrounds

POSE_REPO_COMMIT = "1166a17316f38bf31c5ca0ee4c7a26cc7c4c97f2"
BACKGROUNDS_KEEP = frozenset(
    [f"backgrounds/inria_person_negatives/inria_neg_{n}.jpg" for n in lists.INRIA_NEGATIVES]
    + [f"backgrounds/lsp_dpm_negatives/{n}.jpg" for n in lists.LSP_DPM_NEGATIVES])

# ----------------------------------------------------------------------------------------------
# HDRIs

HDRI_NAMES = ("adams_place_bridge", "dikhololo_night", "empty_warehouse_01", "forest_slope",
              "immenstadter_horn", "kiara_1_dawn", "lebombo", "potsdamer_platz", "rooitou_park",
              "st_fagans_interior", "studio_small_03", "venice_sunset")
DREI_COMMIT = "456060a26bbeb8fdf79326f224b6d99b8bcce736"

# ----------------------------------------------------------------------------------------------
# Akhter & Black joint limits

AKHTER_FILES = ("staticPose.mat", "jointAngleModel.mat", "jointAngleModel_v2.mat", "skeleton_17Pts.mat")
AKHTER_COMMIT = "654a7e976372de547a3ee99fe6fcedea58c8580a"

# ----------------------------------------------------------------------------------------------
# MakeHuman system assets (garment, shoe, hair, eyebrow, eyelash meshes for hm08; BVH poses)

MAKEHUMAN_ASSETS_COMMIT = "8cf9645b975a98eea056b140df11a1d278da0d10"
MAKEHUMAN_CLOTHES = ("fedora01", "female_casualsuit01", "female_casualsuit02", "female_elegantsuit01",
                     "female_sportsuit01", "male_casualsuit01", "male_casualsuit02", "male_casualsuit03",
                     "male_casualsuit04", "male_casualsuit05", "male_casualsuit06", "male_elegantsuit01",
                     "male_worksuit01", "shoes01", "shoes02", "shoes03", "shoes04", "shoes05", "shoes06")
# the textures of these assets are Git LFS pointers upstream: only the geometry, materials and thumbnails
_MH_FILES = r"(?:obj|mhclo|mhmat|thumb)"


SETS: dict[str, AssetSet] = {
    "cmu_mocap": AssetSet(
        name="cmu_mocap",
        title="CMU Graphics Lab Motion Capture Database, original ASF/AMC (subjects "
              + ", ".join(CMU_SUBJECTS) + ")",
        license="free for research; may be included in commercial products, not resold (mocap.cs.cmu.edu)",
        sources=_cmu_sources(),
        expect=Expect(globs={"asf/*.asf": 1, "amc/*/*.amc": 1},
                      reference_counts={"asf/*.asf": 6, "amc/*/*.amc": 98}),
        post=("cmu_clips_csv",),
        notes="All of CMU's ASF/AMC is also one archive, http://mocap.cs.cmu.edu/allasfamc.zip "
              "(all_asfamc/subjects/SS/SS_TT.amc); per-clip files are fetched instead to download only "
              "the clips of the main split.",
    ),
    "lsp": AssetSet(
        name="lsp",
        title="Leeds Sports Pose, train half (images 1-1000)",
        license="no license stated; cite Johnson & Everingham, BMVC 2010 (research use)",
        sources=(Source(
            urls=("http://sam.johnson.io/research/lsp_dataset.zip",),
            kind="zip",
            rules=(Rule(r"(?:[^/]+/)?images/im(\d{4})\.jpg", "lsp/images/im{1}.jpg", only=LSP_TRAIN),
                   Rule(r"(?:[^/]+/)?joints\.mat", "lsp/joints_train.mat", transform="lsp_joints_train"),
                   Rule(r"(?:[^/]+/)?README\.txt", "lsp/README_upstream.txt")),
        ),),
        expect=Expect(globs={"images/im*.jpg": 1, "joints_train.mat": 1},
                      reference_counts={"images/im*.jpg": 1000}),
    ),
    "clothing": AssetSet(
        name="clothing",
        title="Flat-lay garment photos (clothing-dataset-small, CC0) + VITON-HD tops with masks (CC BY-NC 4.0)",
        license="CC0 1.0 (clothing-dataset-small); CC BY-NC 4.0 (VITON-HD)",
        sources=(
            Source(urls=(f"https://github.com/alexeygrigorev/clothing-dataset-small/archive/{CLOTHING_SMALL_COMMIT}.zip",),
                   kind="zip", strip_top=True,
                   rules=(Rule(r"(?:train|validation|test)/(" + "|".join(UPPER_CLASSES) + r")/([0-9a-f-]+\.jpg)",
                               "clothing/clothing_dataset_cc0/upper/{1}/{2}", transform="jpeg_long512_q90",
                               only=CLOTHING_KEEP),
                          Rule(r"(?:train|validation|test)/(" + "|".join(LOWER_CLASSES) + r")/([0-9a-f-]+\.jpg)",
                               "clothing/clothing_dataset_cc0/lower/{1}/{2}", transform="jpeg_long512_q90",
                               only=CLOTHING_KEEP))),
            Source(urls=(f"https://github.com/agrikatheprogrammer/VITON-HD/archive/{VITON_FORK_COMMIT}.zip",),
                   kind="zip", strip_top=True,
                   rules=(Rule(r"datasets/test/cloth/(\d{5}_00)\.jpg", "clothing/viton_hd/cloth/{1}.jpg",
                               transform="viton_cloth"),
                          Rule(r"datasets/test/cloth-mask/(\d{5}_00)\.jpg", "clothing/viton_hd/cloth_mask/{1}.png",
                               transform="viton_mask"))),
        ),
        expect=Expect(globs={"clothing_dataset_cc0/upper/*/*.jpg": 1, "clothing_dataset_cc0/lower/*/*.jpg": 1},
                      reference_counts={"clothing_dataset_cc0/upper/*/*.jpg": 130,
                                        "clothing_dataset_cc0/lower/*/*.jpg": 105,
                                        "viton_hd/cloth/*.jpg": 13}),
        post=("clothing_manifest",),
        notes="The 235 photos were chosen by a background-plainness score and by eye; upstream this is "
              "replayed from the recorded file list (upstream_lists.CLOTHING_CC0), not re-derived.",
    ),
    "backgrounds": AssetSet(
        name="backgrounds",
        title="Person-free scenes: INRIA Person negatives + LSP dpm-neg sports-venue crops",
        license="research use (INRIA Person, Dalal & Triggs 2005; LSP dpm-neg, Pishchulin et al. 2013)",
        sources=(Source(
            urls=(f"https://github.com/ruananswer/Articulated_Pose_Estimation_1/archive/{POSE_REPO_COMMIT}.zip",),
            kind="zip", strip_top=True,
            rules=(Rule(r"dataset/INRIA/(\d{5})\.jpg", "backgrounds/inria_person_negatives/inria_neg_{1}.jpg",
                        transform="jpeg_long512_q90", only=BACKGROUNDS_KEEP),
                   Rule(r"dataset/LSP/dpm-neg/(im\d{4}-rescaled)\.png", "backgrounds/lsp_dpm_negatives/{1}.jpg",
                        transform="jpeg_long512_q90", only=BACKGROUNDS_KEEP),
                   Rule(r"dataset/LSP/dpm-neg/README(?:\.txt)?", "backgrounds/lsp_dpm_negatives/README_upstream.txt")),
        ),),
        expect=Expect(globs={"**/*.jpg": 1}, reference_counts={"**/*.jpg": 288}),
        post=("backgrounds_manifest",),
        notes="Hand-picked from contact sheets; replayed from upstream_lists, not re-derivable.",
    ),
    "hdri": AssetSet(
        name="hdri",
        title="Poly Haven HDRIs, 1k equirectangular .hdr",
        license="CC0 1.0 (Poly Haven)",
        sources=tuple(Source(urls=(f"https://dl.polyhaven.org/file/ph-assets/HDRIs/hdr/1k/{n}_1k.hdr",
                                   f"https://raw.githubusercontent.com/pmndrs/drei-assets/{DREI_COMMIT}/hdri/{n}_1k.hdr"),
                             dest=f"hdri/{n}_1k.hdr") for n in HDRI_NAMES),
        expect=Expect(globs={"*.hdr": 1}, reference_counts={"*.hdr": 12}),
    ),
    "akhter_black_joint_limits": AssetSet(
        name="akhter_black_joint_limits",
        title="Akhter & Black CVPR 2015 pose-conditioned joint-angle limit model (.mat)",
        license="research use; cite Akhter & Black, CVPR 2015 (http://poseprior.is.tue.mpg.de)",
        sources=tuple(Source(urls=(f"https://raw.githubusercontent.com/nicolocarissimi/tmp/{AKHTER_COMMIT}/{f}",),
                             dest=f"akhter_black_joint_limits/{f}") for f in AKHTER_FILES),
        expect=Expect(globs={f: 1 for f in AKHTER_FILES}),
    ),
    "makehuman_assets": AssetSet(
        name="makehuman_assets",
        title="MakeHuman system assets for the base mesh hm08: outfits, shoes, a hat, hair, eyebrows, "
              "eyelashes (.obj + .mhclo + .mhmat + thumbnail, no textures) and BVH poses",
        license="CC0 1.0 (makehumancommunity/makehuman-assets, released as CC0 in September 2020)",
        sources=(Source(
            urls=(f"https://github.com/makehumancommunity/makehuman-assets/archive/{MAKEHUMAN_ASSETS_COMMIT}.zip",),
            kind="zip", strip_top=True,
            rules=(Rule(r"base/clothes/((?:" + "|".join(MAKEHUMAN_CLOTHES) + r")/(?:[^/]+/)?[^/]+\." + _MH_FILES + ")",
                        "makehuman_assets/clothes/{1}"),
                   Rule(r"base/(hair|eyebrows|eyelashes)/([^/]+/[^/]+\." + _MH_FILES + ")",
                        "makehuman_assets/{1}/{2}"),
                   Rule(r"base/poses/([^/]+\.(?:bvh|meta|thumb))", "makehuman_assets/poses/{1}"),
                   Rule(r"LICENSE(?:\.md|\.txt)?", "makehuman_assets/LICENSE.txt")),
        ),),
        expect=Expect(globs={"clothes/*/*.mhclo": 1, "clothes/*/*.obj": 1, "hair/*/*.mhclo": 1,
                             "eyebrows/*/*.mhclo": 1, "eyelashes/*/*.mhclo": 1},
                      reference_counts={"clothes/*/*.mhclo": 20, "hair/*/*.mhclo": 10, "eyebrows/*/*.mhclo": 12,
                                        "eyelashes/*/*.mhclo": 4, "poses/*.bvh": 15}),
        notes="The upstream archive is large (the whole asset repository, its textures as Git LFS pointers); "
              "only base/clothes (the listed items), base/hair, base/eyebrows, base/eyelashes and base/poses "
              "are kept, with the extensions above.",
    ),
}
