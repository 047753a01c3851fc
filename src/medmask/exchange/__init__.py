"""Other tools' formats, in and out: NIfTI (one file per mask, label maps), 3D Slicer's
``.seg.nrrd``, and DICOM (source series, Segmentation objects) in :mod:`.dicom`."""
