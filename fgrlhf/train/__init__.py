"""Training loops: reward models (``rm``)."""
