"""LanceDB tables and the image blob store. Uses the plain record types of `pipelines`."""
