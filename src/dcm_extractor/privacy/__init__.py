"""De-identification: keyed pseudonyms and date handling (:mod:`.pseudonyms`), and the
policy a run follows about what it may write and say (:mod:`.policy`)."""
