"""The model: masks, label mappings, spaces and their geometry, in memory only.

No module here reads or writes a file. :class:`~medmask.model.mask.SegmentationMask`'s
file methods (MedMask's ``save``/``load``/``from_nifti`` ...) call the functions the
package wires in (:mod:`medmask.model.wiring`); the layers that do I/O import the
model, never the reverse.
"""
