# Log-rank (survdiff, rho = 0) where a group's expected count is 0: R's df = the number of groups
# with expected > 0, minus 1 (survival:::survdiff.fit's caller: df <- sum(1 * (etmp > 0)) - 1),
# and chisq = 0 when fewer than two groups have expected > 0.
# Run: Rscript tests/reference/make_logrank_expected_zero.R  (writes r_logrank_expected_zero.json)
suppressPackageStartupMessages({library(survival); library(jsonlite)})

cases <- list(
  # c: both patients censored (days 1, 2) before the first event (day 5): expected 0
  one_group_expected_zero = data.frame(
    time   = c(5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 1, 2),
    status = c(1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0),
    group  = c(rep("a", 6), rep("b", 4), "c", "c")),
  # four groups, c and d censored before the first event: df 1
  two_groups_expected_zero = data.frame(
    time   = c(4, 6, 8, 10, 12, 5, 7, 9, 11, 1, 2, 3, 2),
    status = c(1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0),
    group  = c(rep("a", 5), rep("b", 4), "c", "c", "d", "d")),
  # only a has expected > 0 (b censored before a's first event): df 0, chisq 0
  one_group_with_expected = data.frame(
    time   = c(5, 6, 7, 1, 2),
    status = c(1, 1, 0, 0, 0),
    group  = c("a", "a", "a", "b", "b")),
  # no event at all: every expected count is 0
  no_event = data.frame(
    time   = c(1, 2, 3, 4),
    status = c(0, 0, 0, 0),
    group  = c("a", "a", "b", "b"))
)

out <- lapply(cases, function(d) {
  s <- survdiff(Surv(time, status) ~ group, data = d)
  e <- s$exp
  list(data = d, group = sub("^group=", "", names(s$n)), n = as.vector(s$n),
       observed = as.vector(s$obs), expected = as.vector(e),
       chisq = s$chisq, df = sum(1 * (e > 0)) - 1, p = s$pvalue)
})
out$meta <- list(r = R.version.string, survival = as.character(packageVersion("survival")),
                 note = "df as print.survdiff computes it; p = survdiff()$pvalue = pchisq(chisq, df, lower.tail = FALSE)")
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
writeLines(toJSON(out, digits = I(15), auto_unbox = TRUE, pretty = TRUE, dataframe = "columns"),
           file.path(here, "r_logrank_expected_zero.json"))
