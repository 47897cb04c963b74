"""End-to-end tests of the therapist's pages in headless Chromium, against the real station on the simulated plate."""
