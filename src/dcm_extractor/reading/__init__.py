"""Reading one file: the fast header walker with its pydicom hand-over, the verdict on what
a file is (image, or the reason it is not counted), character sets, the values beyond the
fixed columns (``--columns``, the series attributes) and the SOP classes known not to be
images."""
