"""One run over a data root: its options, the pipeline, local processes or a Dask cluster
(batches, isolation of a case that kills its process), the resume manifest, the output
lock, project IDs and what earlier runs left behind."""
