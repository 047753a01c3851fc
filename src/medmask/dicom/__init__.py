"""The earlier path of :mod:`medmask.exchange.dicom` (``medmask.dicom.exchange`` was
documented for SEG export); the modules now live in :mod:`medmask.exchange.dicom`."""
