"""Small shared helpers: seeding, devices, threads, timing."""
