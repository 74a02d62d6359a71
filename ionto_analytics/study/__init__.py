"""Network studies: one study spec run at every site, only safe aggregates leave, pooled
centrally.

* :mod:`~ionto_analytics.study.site` – run every contrast of a spec on one store
  (:func:`run_site`), as aggregate tables;
* :mod:`~ionto_analytics.study.package` – the results package: checked for small cells and
  identifiers before it is written, verified against its manifest when read;
* :mod:`~ionto_analytics.study.meta` – fixed-effect and random-effects meta-analysis of one
  contrast; :mod:`~ionto_analytics.study.sufficient` – the exact pooled ANCOVA from the
  sites' X'X, X'y and y'y;
* :mod:`~ionto_analytics.study.pool` – verify packages of one spec and pool every contrast;
  :mod:`~ionto_analytics.study.page` – the self-contained HTML page.

The spec itself is data: :mod:`data_schemas.study`. ``ionto study run`` and
``ionto study pool`` are the command line.
"""
