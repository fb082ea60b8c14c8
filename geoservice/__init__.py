"""geoservice: grid governance and police coverage GIS for Huicheng District (惠城区)."""

__version__ = "0.1.0"
