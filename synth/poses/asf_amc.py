"""Acclaim ASF (skeleton) and AMC (motion) files, as used by the CMU MoCap database.

Our own parser (no third-party mocap library). Conventions kept from the files:
- lengths (bone lengths, root translations) are converted to metres on reading: the ASF line
  `:units length L` means one file unit is 1/L inches, i.e. 0.0254 / L metres (CMU: L = 0.45);
- angles stay in degrees (ASF `axis`, AMC values); the ASF `angle rad` unit is converted to degrees;
- the CMU frame is Y up; conversion to synth's Z-up frame happens in `kinematics`.

Bad input raises `InputError` with one line "FILE:LINE: fault".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np

from synth.io_utils import InputError, located_error, read_text

INCH_M = 0.0254
ROTATION_DOFS = ("rx", "ry", "rz")
ROOT_CHANNELS = ("TX", "TY", "TZ", "RX", "RY", "RZ")


@dataclass
class Bone:
    id: int
    name: str
    direction: np.ndarray            # (3,) unit rest direction in the ASF world frame (Y up)
    length: float                    # metres
    axis: np.ndarray                 # (3,) degrees: the bone's local frame as Euler angles about x, y, z
    axis_order: str                  # e.g. "XYZ": x applied first (C = Rz @ Ry @ Rx)
    dofs: list[str] = field(default_factory=list)                 # e.g. ["rx", "ry", "rz"]
    limits: list[tuple[float, float]] = field(default_factory=list)  # degrees, one per dof given


@dataclass
class Skeleton:
    path: Path
    name: str
    metres_per_unit: float           # 0.0254 / `length` of the :units section
    root_order: list[str]            # AMC root channels, e.g. ["TX","TY","TZ","RX","RY","RZ"]
    root_axis_order: str             # e.g. "XYZ"
    root_position: np.ndarray        # (3,) metres (rest position; AMC frames give the actual one)
    root_orientation: np.ndarray     # (3,) degrees about x, y, z
    bones: dict[str, Bone]           # in file order
    children: dict[str, list[str]]   # "root" and bone names -> child bone names
    parent: dict[str, str]           # bone name -> parent name ("root" for the top bones)

    def topological_order(self) -> list[str]:
        """Bone names (without "root") with every parent before its children."""
        order: list[str] = []
        stack = list(reversed(self.children.get("root", [])))
        while stack:
            name = stack.pop()
            order.append(name)
            stack.extend(reversed(self.children.get(name, [])))
        return order

    def amc_layout(self) -> dict[str, int]:
        """Name -> number of values on its AMC line ("root" and every bone that has dofs)."""
        layout = {"root": len(self.root_order)}
        layout.update({b.name: len(b.dofs) for b in self.bones.values() if b.dofs})
        return layout


@dataclass
class Motion:
    path: Path
    skeleton: Skeleton
    frame_numbers: np.ndarray        # (F,) int64, consecutive
    values: dict[str, np.ndarray]    # "root" -> (F, 6) raw AMC root values (file units / degrees);
                                     # bone -> (F, ndof) degrees in the bone's dof order

    def __len__(self) -> int:
        return len(self.frame_numbers)

    @property
    def root_translation(self) -> np.ndarray:
        """(F, 3) metres, ASF frame: TX, TY, TZ."""
        root = self.values["root"]
        out = np.zeros((len(self), 3))
        for i, ch in enumerate(self.skeleton.root_order):
            if ch in ("TX", "TY", "TZ"):
                out[:, "XYZ".index(ch[1])] = root[:, i] * self.skeleton.metres_per_unit
        return out

    @property
    def root_rotation(self) -> np.ndarray:
        """(F, 3) degrees about x, y, z (composed in the order of the root `order` line)."""
        root = self.values["root"]
        out = np.zeros((len(self), 3))
        for i, ch in enumerate(self.skeleton.root_order):
            if ch in ("RX", "RY", "RZ"):
                out[:, "XYZ".index(ch[1])] = root[:, i]
        return out

    @property
    def root_rotation_order(self) -> str:
        return "".join(ch[1] for ch in self.skeleton.root_order if ch.startswith("R"))

    def bone_angles(self, name: str) -> np.ndarray:
        """(F, 3) degrees about x, y, z of a bone's motion (missing dofs are 0)."""
        out = np.zeros((len(self), 3))
        if name in self.values:
            for i, dof in enumerate(self.skeleton.bones[name].dofs):
                out[:, "xyz".index(dof[1])] = self.values[name][:, i]
        return out


# ----------------------------------------------------------------------------------------------
# ASF

def _floats(path: Path, lineno: int, tokens: list[str], n: int, what: str) -> np.ndarray:
    if len(tokens) < n:
        raise located_error(path, lineno, f"{what} needs {n} numbers, got {len(tokens)}")
    try:
        values = np.array([float(t) for t in tokens[:n]])
    except ValueError:
        raise located_error(path, lineno, f"{what}: malformed number in {' '.join(tokens[:n])!r}") from None
    if not np.all(np.isfinite(values)):
        raise located_error(path, lineno, f"{what}: non-finite number in {' '.join(tokens[:n])!r}")
    return values


def parse_asf(path: str | Path) -> Skeleton:
    """Read an Acclaim ASF skeleton. Lengths in metres, angles in degrees."""
    path = Path(path)
    lines = read_text(path).splitlines()
    sections: set[str] = set()
    units: dict[str, str] = {}
    name = ""
    root: dict = {}
    bones: dict[str, Bone] = {}
    children: dict[str, list[str]] = {}
    parent: dict[str, str] = {}
    raw_bones: list[tuple[int, dict]] = []

    section = None
    bone: dict | None = None
    bone_line = 0
    last_key = None
    hierarchy_open = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        if tokens[0].startswith(":"):
            section = tokens[0][1:].lower()
            sections.add(section)
            if section == "name" and len(tokens) > 1:
                name = tokens[1]
            if section == "units":
                tokens = tokens[1:]          # "units" may continue on the same line
                for k in range(0, len(tokens) - 1, 2):
                    units[tokens[k].lower()] = tokens[k + 1]
            continue
        key = tokens[0].lower()
        if section == "units":
            if len(tokens) < 2:
                raise located_error(path, lineno, f"units entry {line!r} has no value")
            units[key] = tokens[1]
        elif section == "root":
            if key == "order":
                order = [t.upper() for t in tokens[1:]]
                bad = [t for t in order if t not in ROOT_CHANNELS]
                if bad or len(set(order)) != len(order):
                    raise located_error(path, lineno, f"root order {' '.join(tokens[1:])!r} is not a set of TX TY TZ RX RY RZ")
                root["order"] = (lineno, order)
            elif key == "axis":
                root["axis"] = (lineno, _axis_order(path, lineno, tokens[1] if len(tokens) > 1 else ""))
            elif key == "position":
                root["position"] = (lineno, _floats(path, lineno, tokens[1:], 3, "root position"))
            elif key == "orientation":
                root["orientation"] = (lineno, _floats(path, lineno, tokens[1:], 3, "root orientation"))
            else:
                raise located_error(path, lineno, f"unknown root entry {tokens[0]!r}")
        elif section == "bonedata":
            if key == "begin":
                if bone is not None:
                    raise located_error(path, lineno, "'begin' inside a bone (missing 'end')")
                bone, bone_line, last_key = {}, lineno, None
            elif key == "end":
                if bone is None:
                    raise located_error(path, lineno, "'end' without 'begin'")
                raw_bones.append((bone_line, bone))
                bone = None
            elif bone is None:
                raise located_error(path, lineno, f"{tokens[0]!r} outside a bone's begin/end")
            elif key == "id":
                bone["id"] = int(_floats(path, lineno, tokens[1:], 1, "bone id")[0])
            elif key == "name":
                if len(tokens) < 2:
                    raise located_error(path, lineno, "bone name missing")
                bone["name"] = tokens[1]
            elif key == "direction":
                bone["direction"] = _floats(path, lineno, tokens[1:], 3, "bone direction")
            elif key == "length":
                bone["length"] = float(_floats(path, lineno, tokens[1:], 1, "bone length")[0])
            elif key == "axis":
                bone["axis"] = _floats(path, lineno, tokens[1:], 3, "bone axis")
                bone["axis_order"] = _axis_order(path, lineno, tokens[4] if len(tokens) > 4 else "")
            elif key == "dof":
                dofs = [t.lower() for t in tokens[1:]]
                bad = [d for d in dofs if d not in ROTATION_DOFS]
                if bad:
                    raise located_error(path, lineno, f"unsupported dof {bad[0]!r} (only rx ry rz are supported)")
                if len(set(dofs)) != len(dofs):
                    raise located_error(path, lineno, f"repeated dof in {' '.join(tokens[1:])!r}")
                bone["dofs"] = dofs
            elif key == "limits" or (key.startswith("(") and last_key == "limits"):
                text = line[len("limits"):] if key == "limits" else line
                nums = text.replace("(", " ").replace(")", " ").split()
                vals = _floats(path, lineno, nums, 2, "limits")
                bone.setdefault("limits", []).append((float(vals[0]), float(vals[1])))
                key = "limits"
            else:
                # Other Acclaim bone fields (bodymass, cofmass) do not matter for kinematics.
                pass
            last_key = key
        elif section == "hierarchy":
            if key == "begin":
                hierarchy_open = True
            elif key == "end":
                hierarchy_open = False
            elif hierarchy_open:
                parent_name, kids = tokens[0], tokens[1:]
                for kid in kids:
                    if kid in parent:
                        raise located_error(path, lineno, f"bone {kid!r} has two parents")
                    parent[kid] = parent_name
                children.setdefault(parent_name, []).extend(kids)
            else:
                raise located_error(path, lineno, "hierarchy entry outside begin/end")
        # other sections (version, documentation, ...) are free text

    if bone is not None:
        raise located_error(path, bone_line, "bone without 'end' (truncated file?)")
    for required in ("units", "root", "bonedata", "hierarchy"):
        if required not in sections:
            raise located_error(path, None, f"missing required section ':{required}'")
    if "length" not in units:
        raise located_error(path, None, "':units' has no 'length' entry")
    try:
        length_unit = float(units["length"])
    except ValueError:
        raise located_error(path, None, f"':units length' is not a number: {units['length']!r}") from None
    if not (length_unit > 0 and math.isfinite(length_unit)):
        raise located_error(path, None, f"':units length' must be positive, got {units['length']!r}")
    angle_scale = 1.0
    angle_unit = units.get("angle", "deg").lower()
    if angle_unit.startswith("rad"):
        angle_scale = 180.0 / math.pi
    elif not angle_unit.startswith("deg"):
        raise located_error(path, None, f"unknown ':units angle' {units['angle']!r}")
    metres_per_unit = INCH_M / length_unit

    for entry in ("order", "axis"):
        if entry not in root:
            raise located_error(path, None, f"':root' has no '{entry}' line")
    for line_no, b in raw_bones:
        for entry in ("name", "direction", "length", "axis"):
            if entry not in b:
                raise located_error(path, line_no, f"bone has no '{entry}' line")
        if b["name"] in bones or b["name"] == "root":
            raise located_error(path, line_no, f"bone name {b['name']!r} used twice")
        direction = b["direction"]
        norm = float(np.linalg.norm(direction))
        if norm < 1e-9:
            raise located_error(path, line_no, f"bone {b['name']!r} has a zero direction")
        if b["length"] < 0:
            raise located_error(path, line_no, f"bone {b['name']!r} has a negative length")
        bones[b["name"]] = Bone(
            id=b.get("id", len(bones) + 1), name=b["name"], direction=direction / norm,
            length=b["length"] * metres_per_unit, axis=b["axis"] * angle_scale,
            axis_order=b["axis_order"], dofs=b.get("dofs", []),
            limits=[(lo * angle_scale, hi * angle_scale) for lo, hi in b.get("limits", [])])
    if not bones:
        raise located_error(path, None, "':bonedata' holds no bones")
    for kid, par in parent.items():
        if kid not in bones:
            raise located_error(path, None, f"hierarchy names unknown bone {kid!r}")
        if par != "root" and par not in bones:
            raise located_error(path, None, f"hierarchy names unknown parent {par!r}")
    skeleton = Skeleton(
        path=path, name=name, metres_per_unit=metres_per_unit, root_order=root["order"][1],
        root_axis_order=root["axis"][1],
        root_position=root.get("position", (0, np.zeros(3)))[1] * metres_per_unit,
        root_orientation=root.get("orientation", (0, np.zeros(3)))[1] * angle_scale,
        bones=bones, children=children, parent=parent)
    reached = skeleton.topological_order()
    if len(reached) != len(bones) or set(reached) != set(bones):
        missing = sorted(set(bones) - set(reached))
        raise located_error(path, None, f"bones not connected to the root in ':hierarchy': {' '.join(missing[:5])}")
    return skeleton


def _axis_order(path: Path, lineno: int, text: str) -> str:
    order = text.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise located_error(path, lineno, f"axis order {text!r} is not a permutation of XYZ")
    return order


# ----------------------------------------------------------------------------------------------
# AMC

def _is_frame_line(line: str) -> bool:
    s = line.strip()
    return s.isdigit()


def parse_amc(path: str | Path, skeleton: Skeleton) -> Motion:
    """Read an AMC motion for `skeleton`. Every frame must give every bone that has dofs.

    Fast path: the layout of the first frame is assumed for all frames and each column of bone
    lines is converted at once; anything unexpected falls back to a line-by-line parse that
    names the exact line and fault.
    """
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    angle_scale = 1.0
    start = None
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith(":"):
            if s.upper().startswith(":RADIANS"):
                angle_scale = 180.0 / math.pi
            continue
        if _is_frame_line(s):
            start = i
            break
        raise located_error(path, i + 1, f"expected a header line or a frame number, got {s[:40]!r}")
    if start is None:
        raise located_error(path, None, "no frames")
    motion = _parse_amc_fast(path, skeleton, lines, start)
    if motion is None:
        motion = _parse_amc_slow(path, skeleton, lines, start)
    if angle_scale != 1.0:
        for name, vals in motion.values.items():
            if name == "root":
                rot = [i for i, ch in enumerate(skeleton.root_order) if ch.startswith("R")]
                vals[:, rot] *= angle_scale
            else:
                vals *= angle_scale
    return motion


def _parse_amc_fast(path: Path, skeleton: Skeleton, lines: list[str], start: int) -> Motion | None:
    data = lines[start:]
    while data and not data[-1].strip():
        data.pop()
    layout = skeleton.amc_layout()
    # The first frame's layout.
    template: list[tuple[str, int]] = []
    for line in data[1:]:
        if _is_frame_line(line):
            break
        tokens = line.split()
        if not tokens or tokens[0] not in layout or len(tokens) != 1 + layout[tokens[0]]:
            return None
        template.append((tokens[0], layout[tokens[0]]))
    names = [t[0] for t in template]
    if sorted(names) != sorted(layout) or len(set(names)) != len(names):
        return None
    stride = 1 + len(template)
    if len(data) % stride:
        return None
    n_frames = len(data) // stride
    try:
        frame_numbers = np.array([int(s) for s in data[0::stride]], dtype=np.int64)
    except ValueError:
        return None
    if np.any(np.diff(frame_numbers) != 1):
        return None
    values: dict[str, np.ndarray] = {}
    for j, (name, n_values) in enumerate(template):
        column = data[j + 1::stride]
        # Every line of the column starts with its bone name, and the column's tokens are
        # exactly (name, n_values numbers) per line: then each line holds exactly its values.
        prefix = name + " "
        if not all(map(str.startswith, column, repeat(prefix))):
            return None
        tokens = " ".join(column).split()
        width = n_values + 1
        if len(tokens) != n_frames * width or tokens[0::width].count(name) != n_frames:
            return None
        del tokens[0::width]
        try:
            flat = np.fromiter(map(float, tokens), dtype=np.float64, count=len(tokens))
        except ValueError:
            return None
        if not np.all(np.isfinite(flat)):
            return None
        values[name] = flat.reshape(n_frames, n_values)
    return Motion(path=path, skeleton=skeleton, frame_numbers=frame_numbers, values=values)


def _parse_amc_slow(path: Path, skeleton: Skeleton, lines: list[str], start: int) -> Motion:
    layout = skeleton.amc_layout()
    frame_numbers: list[int] = []
    columns: dict[str, list[list[float]]] = {name: [] for name in layout}
    current: dict[str, list[float]] | None = None
    frame_line = 0

    def close_frame() -> None:
        missing = [n for n in layout if n not in current]
        if missing:
            raise located_error(path, frame_line, f"frame {frame_numbers[-1]} is incomplete: {len(current)} of "
                        f"{len(layout)} bone lines, missing {' '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''} (truncated file?)")
        for name, vals in current.items():
            columns[name].append(vals)

    for i in range(start, len(lines)):
        lineno = i + 1
        s = lines[i].strip()
        if not s:
            continue
        if _is_frame_line(s):
            number = int(s)
            if frame_numbers:
                close_frame()
                if number != frame_numbers[-1] + 1:
                    raise located_error(path, lineno, f"frame number {number} out of sequence "
                                f"(expected {frame_numbers[-1] + 1})")
            frame_numbers.append(number)
            current, frame_line = {}, lineno
            continue
        tokens = s.split()
        name = tokens[0]
        if name not in layout:
            if name.lstrip("-+").replace(".", "", 1).isdigit():
                raise located_error(path, lineno, f"malformed frame number {s[:40]!r}")
            raise located_error(path, lineno, f"unknown bone name {name!r}")
        if name in current:
            raise located_error(path, lineno, f"bone {name!r} given twice in frame {frame_numbers[-1]}")
        n = layout[name]
        if len(tokens) - 1 != n:
            fault = "missing values" if len(tokens) - 1 < n else "too many values"
            raise located_error(path, lineno, f"{fault} for {name!r}: {len(tokens) - 1} of {n} (truncated file?)"
                        if len(tokens) - 1 < n else f"{fault} for {name!r}: {len(tokens) - 1}, expected {n}")
        vals = []
        for t in tokens[1:]:
            try:
                v = float(t)
            except ValueError:
                raise located_error(path, lineno, f"malformed number {t!r} for {name!r}") from None
            if not math.isfinite(v):
                raise located_error(path, lineno, f"non-finite number {t!r} for {name!r}")
            vals.append(v)
        current[name] = vals
    close_frame()
    values = {name: np.asarray(cols, dtype=np.float64).reshape(len(frame_numbers), layout[name])
              for name, cols in columns.items()}
    return Motion(path=path, skeleton=skeleton, frame_numbers=np.asarray(frame_numbers, dtype=np.int64),
                  values=values)


# ----------------------------------------------------------------------------------------------
# Files of the data directory

def asf_path_for_clip(data_dir: str | Path, clip_id: str) -> Path:
    """data_dir/cmu_mocap/asf/SS.asf for clip "SS_TT"; InputError when it does not exist."""
    subject = clip_id.split("_", 1)[0]
    asf = Path(data_dir) / "cmu_mocap" / "asf" / f"{subject}.asf"
    if not asf.is_file():
        raise InputError(f"no ASF for clip {clip_id}: expected {asf}")
    return asf


def clip_id_of(amc_path: str | Path) -> str:
    return Path(amc_path).stem
