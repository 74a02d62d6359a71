# Reference meta-analyses for tests/test_study_meta.py, written to metafor_reference.json.
# Regenerate with `make reference` (needs R with metafor and jsonlite; Debian:
# apt-get install r-base-core r-cran-metafor r-cran-jsonlite).
#
# metafor's documented example: the BCG vaccine trials (dat.bcg, Colditz et al. 1994), log
# risk ratios from escalc(measure = "RR"), pooled by rma() with a fixed effect ("FE") and
# random effects with DerSimonian-Laird ("DL"), Paule-Mandel ("PM") and REML tau^2.
# Tolerances are tightened (PM's root finder and REML's Fisher scoring default to about
# 1e-4 and 1e-5) so the references are converged well past 1e-6. Each fit gives the
# estimate, SE, 95% CI, tau^2, metafor's I^2 (from tau^2 and the typical within-study
# variance), Cochran's Q and its p-value, and two 95% prediction intervals: metafor's
# predict() (normal quantile, metafor 3.8) and Higgins, Thompson & Spiegelhalter (2009),
# mu +- t(k - 2) sqrt(tau^2 + SE^2), the one the toolkit reports.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

here <- "tests/reference"
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
k <- nrow(dat)
ctrl <- list(tol = 1e-15, threshold = 1e-15, maxiter = 10000)

fit <- function(method) {
  res <- rma(yi, vi, data = dat, method = method, control = ctrl)
  out <- list(
    method = method,
    estimate = as.numeric(res$b), se = res$se, ci_low = res$ci.lb, ci_high = res$ci.ub,
    tau2 = res$tau2, i2_percent = res$I2, q = res$QE, q_p_value = res$QEp
  )
  if (method != "FE") {
    pred <- predict(res)
    half <- qt(0.975, k - 2) * sqrt(res$tau2 + res$se^2)
    out <- c(out, list(
      pi_low_normal = pred$pi.lb, pi_high_normal = pred$pi.ub,
      pi_low_t = as.numeric(res$b) - half, pi_high_t = as.numeric(res$b) + half
    ))
  }
  out
}

out <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  data = list(
    trial = dat$trial, tpos = dat$tpos, tneg = dat$tneg, cpos = dat$cpos, cneg = dat$cneg,
    yi = as.numeric(dat$yi), vi = as.numeric(dat$vi)
  ),
  fits = lapply(c(FE = "FE", DL = "DL", PM = "PM", REML = "REML"), fit)
)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE),
           file.path(here, "metafor_reference.json"))
for (f in out$fits) {
  cat(sprintf("%-4s estimate %.12f  se %.12f  tau2 %.12f  I2 %.10f%%  Q %.10f\n",
              f$method, f$estimate, f$se, f$tau2, f$i2_percent, f$q))
}
