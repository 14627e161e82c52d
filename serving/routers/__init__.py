"""One router per resource: search, images, health and the seed-compatible endpoint."""
