# Cox hazard ratios against a chosen reference level: coxph(Surv(time, status) ~ relevel(factor(g),
# ref = REF)), Efron ties, Wald 95% CI and p, on the built-in synthetic registry's OS by BCLC stage
# (synthetic_os.csv, reference B) and on the NCCTG lung data by sex (lung.csv, reference 2 = female).
# Run: Rscript tests/reference/make_cox_reference_level.R  (writes r_cox_reference_level.json)
suppressPackageStartupMessages({library(survival); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

hr_rows <- function(time, status, g, ref) {
  g <- relevel(factor(g), ref = ref)
  fit <- coxph(Surv(time, status) ~ g, ties = "efron")
  s <- summary(fit)
  lv <- levels(g)[-1]
  list(reference = ref, levels = levels(g),
       group = lv, hazard_ratio = unname(s$conf.int[, "exp(coef)"]),
       ci_lower = unname(s$conf.int[, "lower .95"]), ci_upper = unname(s$conf.int[, "upper .95"]),
       p_value = unname(s$coefficients[, "Pr(>|z|)"]),
       n = as.vector(table(g)[lv]), events = as.vector(tapply(status, g, sum)[lv]))
}

syn <- read.csv(file.path(here, "synthetic_os.csv"), stringsAsFactors = FALSE)
lung <- read.csv(file.path(here, "lung.csv"))
out <- list(
  synthetic_bclc_ref_B = hr_rows(syn$os_days, syn$os_event, syn$bclc_stage, "B"),
  synthetic_bclc_ref_C = hr_rows(syn$os_days, syn$os_event, syn$bclc_stage, "C"),
  lung_sex_ref_2 = hr_rows(lung$time, lung$status, lung$sex, "2"),
  meta = list(r = R.version.string, survival = as.character(packageVersion("survival")),
              note = paste("coxph(Surv(time, status) ~ relevel(factor(group), ref = REF)), Efron ties;",
                           "hazard_ratio, ci_lower, ci_upper = summary(fit)$conf.int; p_value = Wald p;",
                           "one entry per non-reference level, in R's level order. lung status 1 = dead."))
)
writeLines(toJSON(out, digits = I(15), auto_unbox = FALSE, pretty = TRUE), file.path(here, "r_cox_reference_level.json"))
