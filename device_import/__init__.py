"""Device and EHR import, plus the bundled emulator."""
