# Median and S(t) edge cases as R prints them: the median with its CI from summary(fit)$table
# (print.survfit's survmean: the first time S <= 0.5; the midpoint only when S = 0.5 exactly on a
# step that a later drop ends), quantile(fit, 0.5) beside it for contrast, and summary(fit, times,
# extend = TRUE) at times before and after the first event, for each conf.type.
# Run: Rscript tests/reference/make_median_edge_reference.R  (writes r_median_edge.json)
suppressPackageStartupMessages({library(survival); library(jsonlite)})

cases <- list(
  # one patient, dead at day 5: median 5, both CI bounds NA (S falls to 0, the CI is undefined)
  n1_event = data.frame(time = 5, status = 1),
  # one patient, censored at day 5: median and bounds NA (not reached)
  n1_censored = data.frame(time = 5, status = 0),
  # S = 0.5 from day 20 to the last follow-up (40), no later event: median 20 (quantile() says 30)
  flat_half_to_end = data.frame(time = c(10, 20, 30, 40), status = c(1, 1, 0, 0)),
  # S = 0.5 from day 20, ended by a death at day 40: the midpoint, 30
  flat_half_ended = data.frame(time = c(10, 20, 30, 40), status = c(1, 1, 0, 1)),
  # a censoring at day 3 before the first event (day 10): S(2) = 1 with CI (1, 1) before the
  # first follow-up time; S(5) = 1 after it (log-log: NA, log and plain: (1, 1))
  before_first_event = data.frame(time = c(3, 10, 20, 30), status = c(0, 1, 1, 0))
)
times <- c(2, 5, 15)

num <- function(x) if (is.null(x) || length(x) == 0) NA else unname(x)
out <- lapply(cases, function(d) {
  blk <- list(data = d)
  for (ct in c("log-log", "log", "plain")) {
    f <- survfit(Surv(time, status) ~ 1, data = d, conf.type = ct)
    tab <- summary(f)$table
    q <- quantile(f, 0.5)
    s <- summary(f, times = times, extend = TRUE)
    blk[[ct]] <- list(median = num(tab["median"]), median_lower = num(tab["0.95LCL"]),
                      median_upper = num(tab["0.95UCL"]),
                      quantile_median = num(q$quantile), quantile_lower = num(q$lower),
                      quantile_upper = num(q$upper),
                      at_times = list(time = s$time, n_risk = s$n.risk, surv = s$surv,
                                      lower = s$lower, upper = s$upper))
  }
  blk
})
out$meta <- list(r = R.version.string, survival = as.character(packageVersion("survival")),
                 note = paste("median, median_lower, median_upper: summary(fit)$table (what print(fit) shows);",
                              "quantile_*: quantile(fit, 0.5), for contrast; at_times: summary(fit, times = c(2, 5, 15),",
                              "extend = TRUE). NA is null."))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
writeLines(toJSON(out, digits = I(15), auto_unbox = TRUE, pretty = TRUE, dataframe = "columns", na = "null"),
           file.path(here, "r_median_edge.json"))
