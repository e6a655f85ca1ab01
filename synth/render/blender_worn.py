"""The meshes a body wears (garments, shoes, hats, hair, eyebrows, eyelashes) in the Blender scene.

One Blender object per asset, built the first time the asset is worn and kept (an asset's
topology never changes, so later samples only replace vertex positions; the objects are bounded
by the asset catalogue). Objects not worn in a sample are hidden from the render. The renderer
builds its scene afresh at each shard's start (Renderer.reset_persistent_data), these objects
with it, so a shard's scene is made in its own order whatever its worker rendered before.

Materials: one per (shader, part), with pass_index = the SPEC part id, so the Material Index
pass labels a garment pixel with the body part the garment is bound to, as for the body.
- cloth: the sample's garment texture (two images used in turn, as for the body texture, so that
  Cycles with persistent data loads the new pixels);
- solid: a flat colour, the object's colour (Object Info), roughness from the object's
  `synth_roughness` property;
- hair: the object's colour and roughness, anisotropic specular highlights whose tangent runs
  along the UV v direction (the strands of MakeHuman's hair meshes), darkened by fine streaks.
"""
from __future__ import annotations

import bpy
import numpy as np

from synth.render.buffers import PreparedScene, PreparedWorn
from synth.scene import PARTS

_ROUGHNESS_PROP = "synth_roughness"


def _group_output(group):
    group.interface.new_socket(name="Shader", in_out="OUTPUT", socket_type="NodeSocketShader")
    return group.nodes.new("NodeGroupOutput")


def _object_colour(group):
    info = group.nodes.new("ShaderNodeObjectInfo")
    return info.outputs["Color"]


def _object_roughness(group):
    attr = group.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "OBJECT"
    attr.attribute_name = _ROUGHNESS_PROP
    return attr.outputs["Fac"]


class WornMeshes:
    """The worn-mesh objects and materials of one Renderer's scene."""

    def __init__(self, scene, empty_node_tree):
        self.scene = scene
        self._empty_node_tree = empty_node_tree
        self._objects: dict[str, tuple] = {}          # asset -> (object, faces, face_uvs, face_parts)
        self._materials: dict[str, list] = {}         # shader -> 14 part materials
        self._textures = []
        self._texture_node = None
        self._groups = {"cloth": self._cloth_group(), "solid": self._solid_group(), "hair": self._hair_group()}
        for shader in self._groups:         # all made now, in one order, whatever is worn first
            self._part_materials(shader)

    # ------------------------------------------------------------ shaders
    def _cloth_group(self):
        g = bpy.data.node_groups.new("worn_cloth", "ShaderNodeTree")
        out = _group_output(g)
        for i in range(2):
            img = bpy.data.images.new(f"worn_texture_{i}", 4, 4, alpha=False, float_buffer=False)
            img.colorspace_settings.name = "sRGB"
            self._textures.append(img)
        uv = g.nodes.new("ShaderNodeUVMap")
        uv.uv_map = "UVMap"
        tex = g.nodes.new("ShaderNodeTexImage")
        tex.image = self._textures[0]
        tex.interpolation = "Linear"
        tex.extension = "REPEAT"
        self._texture_node = tex
        bsdf = g.nodes.new("ShaderNodeBsdfPrincipled")
        bsdf.inputs["Roughness"].default_value = 0.8
        bsdf.inputs["Sheen Weight"].default_value = 0.3       # the soft rim of fabric
        g.links.new(uv.outputs["UV"], tex.inputs["Vector"])
        g.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        g.links.new(bsdf.outputs["BSDF"], out.inputs["Shader"])
        return g

    def _solid_group(self):
        g = bpy.data.node_groups.new("worn_solid", "ShaderNodeTree")
        out = _group_output(g)
        bsdf = g.nodes.new("ShaderNodeBsdfPrincipled")
        g.links.new(_object_colour(g), bsdf.inputs["Base Color"])
        g.links.new(_object_roughness(g), bsdf.inputs["Roughness"])
        g.links.new(bsdf.outputs["BSDF"], out.inputs["Shader"])
        return g

    def _hair_group(self):
        g = bpy.data.node_groups.new("worn_hair", "ShaderNodeTree")
        out = _group_output(g)
        uv = g.nodes.new("ShaderNodeUVMap")
        uv.uv_map = "UVMap"
        # fine streaks across the strands: a wave pattern along u, stretched along v
        mapping = g.nodes.new("ShaderNodeMapping")
        mapping.inputs["Scale"].default_value = (40.0, 2.0, 1.0)
        wave = g.nodes.new("ShaderNodeTexWave")
        wave.wave_type = "BANDS"
        wave.bands_direction = "X"
        wave.inputs["Distortion"].default_value = 6.0
        wave.inputs["Detail"].default_value = 2.0
        streak = g.nodes.new("ShaderNodeMapRange")
        streak.inputs["To Min"].default_value = 0.65
        streak.inputs["To Max"].default_value = 1.0
        shade = g.nodes.new("ShaderNodeMix")
        shade.data_type = "RGBA"
        shade.blend_type = "MULTIPLY"
        shade.inputs["Factor"].default_value = 1.0
        tangent = g.nodes.new("ShaderNodeTangent")
        tangent.direction_type = "UV_MAP"
        tangent.uv_map = "UVMap"
        bsdf = g.nodes.new("ShaderNodeBsdfPrincipled")
        bsdf.inputs["Anisotropic"].default_value = 0.8
        bsdf.inputs["Anisotropic Rotation"].default_value = 0.25   # highlights along v, not u
        bsdf.inputs["Specular IOR Level"].default_value = 0.35
        g.links.new(uv.outputs["UV"], mapping.inputs["Vector"])
        g.links.new(mapping.outputs["Vector"], wave.inputs["Vector"])
        g.links.new(wave.outputs["Fac"], streak.inputs["Value"])
        g.links.new(_object_colour(g), shade.inputs["A"])
        g.links.new(streak.outputs["Result"], shade.inputs["B"])
        g.links.new(shade.outputs["Result"], bsdf.inputs["Base Color"])
        g.links.new(tangent.outputs["Tangent"], bsdf.inputs["Tangent"])
        g.links.new(_object_roughness(g), bsdf.inputs["Roughness"])
        g.links.new(bsdf.outputs["BSDF"], out.inputs["Shader"])
        return g

    def _part_materials(self, shader: str) -> list:
        mats = self._materials.get(shader)
        if mats is None:
            mats = []
            for part_id, part_name in enumerate(PARTS, start=1):
                mat = bpy.data.materials.new(f"worn_{shader}_{part_id:02d}_{part_name}")
                nt = self._empty_node_tree(mat)
                gnode = nt.nodes.new("ShaderNodeGroup")
                gnode.node_tree = self._groups[shader]
                mout = nt.nodes.new("ShaderNodeOutputMaterial")
                nt.links.new(gnode.outputs["Shader"], mout.inputs["Surface"])
                mat.pass_index = part_id
                mats.append(mat)
            self._materials[shader] = mats
        return mats

    # ------------------------------------------------------------ per sample
    def _build(self, w: PreparedWorn):
        mesh = bpy.data.meshes.new(f"worn:{w.asset}")
        mesh.vertices.add(len(w.vertices) // 3)
        mesh.vertices.foreach_set("co", w.vertices)
        mesh.loops.add(w.faces.size)
        mesh.loops.foreach_set("vertex_index", w.faces.ravel())
        mesh.polygons.add(len(w.faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, w.faces.size, 3, dtype=np.int32))
        uv_layer = mesh.uv_layers.new(name="UVMap")
        uv_layer.data.foreach_set("uv", w.face_uvs.ravel())
        for mat in self._part_materials(w.shader):
            mesh.materials.append(mat)
        mesh.polygons.foreach_set("material_index", w.face_parts.astype(np.int32) - 1)
        mesh.update()
        mesh.shade_smooth()
        obj = bpy.data.objects.new(f"worn:{w.asset}", mesh)
        self.scene.collection.objects.link(obj)
        entry = (obj, w.faces.copy(), w.face_uvs.copy(), w.face_parts.copy(), w.shader)
        self._objects[w.asset] = entry
        return entry

    def update(self, prep: PreparedScene) -> None:
        worn = {w.asset: w for w in prep.worn}
        if prep.worn_texture_rgba is not None:
            w_, h_ = prep.worn_texture_size
            img = self._textures[1] if self._texture_node.image == self._textures[0] else self._textures[0]
            if tuple(img.size) != (w_, h_):
                img.scale(w_, h_)
            img.pixels.foreach_set(prep.worn_texture_rgba)
            img.update()
            self._texture_node.image = img
        for asset, w in worn.items():
            entry = self._objects.get(asset)
            if (entry is not None and (len(w.vertices) != 3 * len(entry[0].data.vertices)
                                       or not np.array_equal(entry[1], w.faces))):
                self._remove(asset)
                entry = None
            if entry is None:
                entry = self._build(w)
            obj, faces, face_uvs, face_parts, shader = entry
            mesh = obj.data
            mesh.vertices.foreach_set("co", w.vertices)
            if not np.array_equal(face_uvs, w.face_uvs):
                mesh.uv_layers["UVMap"].data.foreach_set("uv", w.face_uvs.ravel())
            if shader != w.shader:
                mesh.materials.clear()
                for mat in self._part_materials(w.shader):
                    mesh.materials.append(mat)
                face_parts = None
            if face_parts is None or not np.array_equal(face_parts, w.face_parts):
                mesh.polygons.foreach_set("material_index", w.face_parts.astype(np.int32) - 1)
            self._objects[asset] = (obj, faces, w.face_uvs.copy(), w.face_parts.copy(), w.shader)
            mesh.update()
            obj.color = (*w.color, 1.0)
            obj[_ROUGHNESS_PROP] = w.roughness
            obj.hide_render = False
        for asset, entry in self._objects.items():
            if asset not in worn:
                entry[0].hide_render = True

    def _remove(self, asset: str) -> None:
        obj = self._objects.pop(asset)[0]
        mesh = obj.data
        bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
