# Reference fits for tests/test_lmm.py, written to tests/reference/reference_fits.json.
# Regenerate with `make reference` (needs R with nlme, lme4, lmerTest and jsonlite; Debian:
# apt-get install r-base-core r-cran-nlme r-cran-lme4 r-cran-lmertest r-cran-jsonlite).
#
# * MMRM: nlme::gls(y ~ ..., correlation = corSymm(form = ~ as.integer(window) | patient),
#   weights = varIdent(form = ~ 1 | window), method = "REML") and the other structures
#   (corCompSymm, corAR1, with and without varIdent, varIdent alone), on the simulated
#   mmrm_emulated.csv and on nlme's Orthodont (exported to orthodont.csv).
# * Random intercept: lmerTest::lmer(y ~ ... + (1 | patient), REML = TRUE / FALSE) (lme4's
#   fit; lmerTest adds Satterthwaite df), on ri_balanced.csv, ri_unbalanced.csv,
#   ri_boundary.csv and Orthodont.
# Optimizer tolerances are tightened so the references are converged well past 1e-6.
suppressPackageStartupMessages({
  library(nlme)
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

here <- "tests/reference"
read <- function(name) read.csv(file.path(here, name))

orthodont <- as.data.frame(nlme::Orthodont)
orthodont <- data.frame(patient = as.character(orthodont$Subject), week = orthodont$age,
                        sex = as.character(orthodont$Sex), y = orthodont$distance)
write.csv(orthodont, file.path(here, "orthodont.csv"), row.names = FALSE)

# nlminb first; then optim's BFGS, which gets msTol as its reltol (nlminb gets no
# tolerance from glsControl), polishes from nlminb's estimates
gls_start <- glsControl(maxIter = 1000, msMaxIter = 1000, tolerance = 1e-12)
gls_polish <- glsControl(maxIter = 1000, msMaxIter = 1000, tolerance = 1e-12,
                         msTol = 1e-15, opt = "optim", optimMethod = "BFGS")
lmer_control <- lmerControl(optimizer = "bobyqa",
                            optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5),
                            check.conv.singular = "ignore")

# each correlation builder takes start values (numeric(0): nlme's default start)
structures <- list(
  unstructured = list(cor = function(v) corSymm(v, form = ~ w | patient), var = TRUE),
  cs = list(cor = function(v) corCompSymm(if (length(v)) v else 0, form = ~ w | patient),
            var = FALSE),
  ar1 = list(cor = function(v) corAR1(if (length(v)) v else 0, form = ~ w | patient),
             var = FALSE),
  heterogeneous_cs = list(cor = function(v) corCompSymm(if (length(v)) v else 0,
                                                        form = ~ w | patient), var = TRUE),
  heterogeneous_ar1 = list(cor = function(v) corAR1(if (length(v)) v else 0,
                                                    form = ~ w | patient), var = TRUE),
  diagonal = list(cor = function(v) NULL, var = TRUE)
)

full_covariance <- function(fit, data) {
  T <- length(unique(data$w))
  if (is.null(fit$modelStruct$corStruct)) {
    ratio <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
    return(diag((fit$sigma * ratio[as.character(seq_len(T))])^2))
  }
  complete <- names(which(table(data$patient) == T))[1]
  unclass(getVarCov(fit, individual = complete))[seq_len(T), seq_len(T)]
}

gls_once <- function(formula, data, spec, cor_start, var_start, control, method) {
  args <- list(model = formula, data = data, method = method, control = control)
  if (!is.null(spec$cor(cor_start))) args$correlation <- spec$cor(cor_start)
  if (spec$var) args$weights <- varIdent(var_start, form = ~ 1 | factor(w))
  do.call(gls, args)
}

# fitted twice: the second run starts at the first one's estimates (a polish), kept when
# its likelihood is higher
gls_fit <- function(formula, data, structure, method = "REML") {
  spec <- structures[[structure]]
  fit <- gls_once(formula, data, spec, numeric(0), numeric(0), gls_start, method)
  cor_start <- if (is.null(fit$modelStruct$corStruct)) numeric(0) else
    coef(fit$modelStruct$corStruct, unconstrained = FALSE)
  var_start <- if (is.null(fit$modelStruct$varStruct)) numeric(0) else
    coef(fit$modelStruct$varStruct, unconstrained = FALSE)
  polished <- tryCatch(gls_once(formula, data, spec, cor_start, var_start, gls_polish,
                                method),
                       error = function(e) fit)
  if (logLik(polished) > logLik(fit)) fit <- polished
  list(model = "mmrm", structure = structure, method = method,
       names = names(coef(fit)), coef = unname(coef(fit)),
       se = unname(sqrt(diag(vcov(fit)))), logLik = as.numeric(logLik(fit)),
       covariance = full_covariance(fit, data),
       design = unname(as.data.frame(model.matrix(formula, data))))
}

lmer_fit <- function(formula, data, reml) {
  fit <- lmerTest::lmer(formula, data = data, REML = reml, control = lmer_control)
  table <- summary(fit)$coefficients
  vc <- as.data.frame(VarCorr(fit))
  list(model = "random_intercept", method = if (reml) "REML" else "ML",
       names = rownames(table), coef = unname(fixef(fit)),
       se = unname(sqrt(diag(as.matrix(vcov(fit))))), df = unname(table[, "df"]),
       patient_variance = vc$vcov[vc$grp == "patient"],
       residual_variance = vc$vcov[vc$grp == "Residual"],
       logLik = as.numeric(logLik(fit)),
       design = unname(as.data.frame(getME(fit, "X"))))
}

out <- list()
emulated <- read("mmrm_emulated.csv")
emulated$w <- as.integer(factor(emulated$week))
emulated_formula <- y ~ 0 + factor(week) + factor(week):arm + factor(week):baseline +
  factor(clinic)
for (s in names(structures)) {
  out[[paste0("emulated_", s)]] <- c(list(data = "mmrm_emulated.csv"),
                                     gls_fit(emulated_formula, emulated, s))
}
out[["emulated_unstructured_ml"]] <- c(list(data = "mmrm_emulated.csv"),
                                       gls_fit(emulated_formula, emulated, "unstructured",
                                               "ML"))
orthodont$w <- as.integer(factor(orthodont$week))
orthodont_formula <- y ~ sex * factor(week)
for (s in c("unstructured", "cs", "heterogeneous_cs")) {
  out[[paste0("orthodont_", s)]] <- c(list(data = "orthodont.csv"),
                                      gls_fit(orthodont_formula, orthodont, s))
}
# the same mean model with a random intercept: equals the cs MMRM on these balanced data,
# and gives lmerTest's Satterthwaite df for it
out[["orthodont_ri_sexweek"]] <- c(list(data = "orthodont.csv"),
                                   lmer_fit(y ~ sex * factor(week) + (1 | patient),
                                            orthodont, TRUE))

for (name in c("ri_balanced", "ri_unbalanced", "ri_boundary")) {
  data <- read(paste0(name, ".csv"))
  for (reml in c(TRUE, FALSE)) {
    key <- paste0(name, if (reml) "_reml" else "_ml")
    out[[key]] <- c(list(data = paste0(name, ".csv")),
                    lmer_fit(y ~ x + arm + (1 | patient), data, reml))
  }
}
for (reml in c(TRUE, FALSE)) {
  key <- paste0("orthodont_ri", if (reml) "_reml" else "_ml")
  out[[key]] <- c(list(data = "orthodont.csv"),
                  lmer_fit(y ~ week + sex + (1 | patient), orthodont, reml))
}

out[["_meta"]] <- list(R = R.version.string,
                       nlme = as.character(packageVersion("nlme")),
                       lme4 = as.character(packageVersion("lme4")),
                       lmerTest = as.character(packageVersion("lmerTest")))
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, matrix = "rowmajor"),
           file.path(here, "reference_fits.json"))
