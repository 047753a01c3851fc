"""Masks into and out of DICOM: source series, Segmentation objects (SEG) and their geometry.

``source`` reads the image series a segmentation belongs to, ``grid`` maps a mask's
voxel grid onto that series' slices (or refuses, naming both geometries), ``seg_writer``
and ``seg_reader`` write and read DICOM Segmentation objects, and ``concepts`` holds the
coded concepts and colours of the segments.
"""
