# Small-sample references for tests/test_small_sample.py, written to
# tests/reference/small_sample_reference.json. Regenerate with `make reference` (needs R
# with nlme, lme4, pbkrtest, clubSandwich and jsonlite; Debian: apt-get install
# r-base-core r-cran-nlme r-cran-lme4 r-cran-pbkrtest r-cran-clubsandwich r-cran-jsonlite).
#
# Kenward-Roger (the MMRM's default):
# * orthodont_ri: pbkrtest::vcovAdj and pbkrtest::get_Lb_ddf (Halekoh & Hojsgaard) on
#   lme4::lmer(y ~ sex * factor(week) + (1 | patient), REML) of nlme's Orthodont: the
#   published implementation, variance components linear in (tau^2, sigma^2).
# * emulated_unstructured: nlme::gls(corSymm + varIdent, REML) on mmrm_emulated.csv (the
#   fit of mmrm_reference.R), then the Kenward-Roger formulas (Kenward & Roger 1997) on the
#   dense N x N block-diagonal V in the linear parametrization of an unstructured matrix
#   (its elements; as SAS DDFM=KR for TYPE=UN). kr_dense() is checked against pbkrtest on
#   the first case before it is used on the second.
# CR2 (the mixed model's default): clubSandwich::vcovCR(type = "CR2") and
#   coef_test(test = "Satterthwaite") (Pustejovsky & Tipton 2018) on nlme::lme random-intercept
#   fits of ri_unbalanced.csv and Orthodont, and on the unstructured gls fit above
#   (emulated_unstructured_cr2: the MMRM's variance = "robust").
suppressPackageStartupMessages({
  library(nlme)
  library(lme4)
  library(pbkrtest)
  library(clubSandwich)
  library(jsonlite)
})

here <- "tests/reference"
read <- function(name) read.csv(file.path(here, name))

# KR on dense matrices: V (N x N), G a list of dV/dphi_a (N x N), X (N x p). Returns the
# adjusted covariance and, per fixed effect, the KR df of the 1-df test.
kr_dense <- function(X, V, G) {
  Vinv <- solve(V)
  TT <- Vinv %*% X
  Phi <- solve(crossprod(X, TT))
  K <- length(G)
  U <- lapply(G, function(g) g %*% TT)              # G_a V^-1 X
  P <- lapply(U, function(u) -crossprod(TT, u))     # X' dV^-1/dphi_a X
  VG <- lapply(G, function(g) Vinv %*% g)
  Q <- array(list(), c(K, K))
  info <- matrix(0, K, K)
  for (a in 1:K) for (b in 1:K) {
    Q[[a, b]] <- crossprod(U[[a]], Vinv %*% U[[b]])
    info[a, b] <- sum(VG[[a]] * t(VG[[b]])) - 2 * sum(diag(Phi %*% Q[[a, b]])) +
      sum(diag(Phi %*% P[[a]] %*% Phi %*% P[[b]]))
  }
  W <- 2 * solve(info)
  inner <- matrix(0, ncol(X), ncol(X))
  for (a in 1:K) for (b in 1:K)
    inner <- inner + W[a, b] * (Q[[a, b]] - P[[a]] %*% Phi %*% P[[b]])
  adjusted <- Phi + 2 * Phi %*% inner %*% Phi
  df <- sapply(seq_len(ncol(X)), function(j) {
    g <- sapply(P, function(Pa) -(Phi %*% Pa %*% Phi)[j, j])
    2 * adjusted[j, j]^2 / drop(t(g) %*% W %*% g)
  })
  list(adjusted = adjusted, df = df)
}

out <- list()

# --- Orthodont, random intercept: pbkrtest, and kr_dense() against it ------------------
orthodont <- read("orthodont.csv")
ri <- lmer(y ~ sex * factor(week) + (1 | patient), data = orthodont, REML = TRUE,
           control = lmerControl(optimizer = "bobyqa",
                                 optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5)))
X <- getME(ri, "X")
p <- ncol(X)
adjusted <- as.matrix(vcovAdj(ri))
df <- sapply(seq_len(p), function(j) get_Lb_ddf(ri, diag(p)[j, , drop = FALSE]))
vc <- as.data.frame(VarCorr(ri))
tau2 <- vc$vcov[vc$grp == "patient"]
sigma2 <- vc$vcov[vc$grp == "Residual"]
Z <- as.matrix(getME(ri, "Z"))
ZZ <- Z %*% t(Z)
dense <- kr_dense(X, tau2 * ZZ + sigma2 * diag(nrow(X)), list(ZZ, diag(nrow(X))))
stopifnot(max(abs(dense$adjusted - adjusted) / abs(adjusted)) < 1e-8,
          max(abs(dense$df - df) / df) < 1e-6)
out[["orthodont_ri"]] <- list(
  data = "orthodont.csv", names = colnames(X), coef = unname(fixef(ri)),
  se_model = unname(sqrt(diag(as.matrix(vcov(ri))))),
  se_kr = unname(sqrt(diag(adjusted))), df_kr = unname(df),
  design = unname(as.data.frame(X)))

# --- mmrm_emulated, unstructured gls: kr_dense() in the elements of Sigma -------------
emulated <- read("mmrm_emulated.csv")
emulated$w <- as.integer(factor(emulated$week))
formula <- y ~ 0 + factor(week) + factor(week):arm + factor(week):baseline + factor(clinic)
control <- glsControl(maxIter = 1000, msMaxIter = 1000, tolerance = 1e-12, msTol = 1e-15,
                      opt = "optim", optimMethod = "BFGS")
fit <- gls(formula, data = emulated, method = "REML",
           correlation = corSymm(form = ~ w | patient),
           weights = varIdent(form = ~ 1 | factor(w)), control = control)
T <- length(unique(emulated$w))
complete <- names(which(table(emulated$patient) == T))[1]
Sigma <- unclass(getVarCov(fit, individual = complete))[seq_len(T), seq_len(T)]
X <- model.matrix(formula, emulated)
N <- nrow(X)
same <- outer(emulated$patient, emulated$patient, "==")
w <- emulated$w
V <- Sigma[w, w] * same
G <- list()
for (k in 1:T) for (j in k:T) {           # the elements on and below the diagonal
  E <- matrix(0, T, T); E[j, k] <- 1; E[k, j] <- 1
  G[[length(G) + 1]] <- E[w, w] * same
}
dense <- kr_dense(X, V, G)
out[["emulated_unstructured"]] <- list(
  data = "mmrm_emulated.csv", names = colnames(X), coef = unname(coef(fit)),
  se_model = unname(sqrt(diag(vcov(fit)))),
  se_kr = unname(sqrt(diag(dense$adjusted))), df_kr = unname(dense$df),
  covariance = Sigma, design = unname(as.data.frame(X)))

# --- CR2 of the same unstructured gls fit ------------------------------------------
test <- coef_test(fit, vcov = "CR2", cluster = emulated$patient, test = "Satterthwaite")
out[["emulated_unstructured_cr2"]] <- list(
  data = "mmrm_emulated.csv", names = colnames(X),
  se_cr2 = unname(sqrt(diag(as.matrix(vcovCR(fit, cluster = emulated$patient,
                                               type = "CR2"))))),
  df_cr2 = unname(test$df_Satt))

# --- CR2 of random-intercept lme fits ------------------------------------------------
lme_control <- lmeControl(maxIter = 1000, msMaxIter = 1000, niterEM = 1000,
                          tolerance = 1e-12, msTol = 1e-14)
cr2_case <- function(formula, data, file) {
  fit <- lme(formula, random = ~ 1 | patient, data = data, method = "REML",
             control = lme_control)
  test <- coef_test(fit, vcov = "CR2", test = "Satterthwaite")
  list(data = file, names = names(fixef(fit)), coef = unname(fixef(fit)),
       se_cr2 = unname(sqrt(diag(as.matrix(vcovCR(fit, type = "CR2"))))),
       df_cr2 = unname(test$df_Satt),
       patient_variance = as.numeric(VarCorr(fit)[1, "Variance"]),
       design = unname(as.data.frame(model.matrix(formula, data))))
}
out[["ri_unbalanced_cr2"]] <- cr2_case(y ~ x + arm, read("ri_unbalanced.csv"),
                                       "ri_unbalanced.csv")
out[["orthodont_cr2"]] <- cr2_case(y ~ sex * factor(week), orthodont, "orthodont.csv")

out[["_meta"]] <- list(R = R.version.string,
                       nlme = as.character(packageVersion("nlme")),
                       lme4 = as.character(packageVersion("lme4")),
                       pbkrtest = as.character(packageVersion("pbkrtest")),
                       clubSandwich = as.character(packageVersion("clubSandwich")))
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, matrix = "rowmajor"),
           file.path(here, "small_sample_reference.json"))
