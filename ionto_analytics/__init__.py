"""ionto-analytics: does iontophoresis help?

Device logs and treatment records to honest outcome comparisons.
"""
