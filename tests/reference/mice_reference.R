# Reference multiple imputation for tests/test_mice.py (run by `make reference`).
# R's mice 3.15 (Debian r-cran-mice): Bayesian linear regression draws ("norm") for the
# baseline and the follow-up, each imputed from all the other columns (treated, age_years
# and the other score), m = 500 imputations of 20 iterations, ANCOVA lm() per data set,
# pooled by mice::pool (Rubin's rules, Barnard-Rubin df). Also mice::pool.scalar on fixed
# inputs, to check pool_rubin's arithmetic exactly.
suppressPackageStartupMessages(library(mice))
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
d <- read.csv(file.path(here, "mice_dataset.csv"))
meth <- c(treated = "", age_years = "", baseline = "norm", follow_up = "norm")
imp <- mice(d, method = meth, m = 500, maxit = 20, seed = 20261201, printFlag = FALSE)
fit <- with(imp, lm(follow_up ~ treated + baseline + age_years))
s <- summary(pool(fit))
row <- s[s$term == "treated", ]
pooled <- pool(fit)$pooled
prow <- pooled[pooled$term == "treated", ]
cc <- summary(lm(follow_up ~ treated + baseline + age_years, data = d))$coefficients
q <- c(1.0, 1.2, 0.8, 1.1, 0.9)
u <- rep(0.04, 5)
ps <- pool.scalar(q, u, n = 54, k = 4)
ref <- list(
  mice_version = as.character(packageVersion("mice")),
  m = 500, maxit = 20,
  estimate = row$estimate, se = row$std.error, df = row$df, fmi = prow$fmi,
  b = prow$b, ubar = prow$ubar,
  complete_case_estimate = cc["treated", "Estimate"],
  complete_case_se = cc["treated", "Std. Error"],
  scalar = list(q = q, u = u, n = 54, k = 4, qbar = ps$qbar, t = ps$t, df = ps$df,
                fmi = ps$fmi)
)
writeLines(
  paste0("{\n", paste(sprintf('  "%s": %s', names(ref), sapply(ref, function(v) {
    if (is.list(v)) {
      paste0("{", paste(sprintf('"%s": %s', names(v), sapply(v, function(x)
        if (length(x) > 1) paste0("[", paste(format(x, digits = 17), collapse = ", "), "]")
        else format(x, digits = 17))), collapse = ", "), "}")
    } else if (is.character(v)) sprintf('"%s"', v) else format(v, digits = 17)
  })), collapse = ",\n"), "\n}"),
  file.path(here, "mice_reference.json")
)
