"""One parser per export format; each has ``sniff(head) -> rank | None`` and ``parse``."""
