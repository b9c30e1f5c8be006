# The headline's survival numbers on the synthetic registry (synthetic_os.csv): 1-year OS with its
# log-log 95% CI and median OS, pooled and per BCLC stage, and the median follow-up by reverse
# Kaplan-Meier (censoring is the event). Writes r_headline.json.
library(survival)
library(jsonlite)
d <- read.csv("tests/reference/synthetic_os.csv", stringsAsFactors = FALSE)
one <- function(fit) {
  s <- summary(fit, times = 365)
  t <- summary(fit)$table
  list(n = unname(t["records"]), events = unname(t["events"]),
       os_1y = s$surv, os_1y_lower = s$lower, os_1y_upper = s$upper,
       median = unname(t["median"]), median_lower = unname(t["0.95LCL"]), median_upper = unname(t["0.95UCL"]))
}
out <- list(all = one(survfit(Surv(os_days, os_event) ~ 1, data = d, conf.type = "log-log")))
for (stage in sort(unique(d$bclc_stage))) {
  out[[stage]] <- one(survfit(Surv(os_days, os_event) ~ 1, data = d[d$bclc_stage == stage, ], conf.type = "log-log"))
}
rev <- summary(survfit(Surv(os_days, 1 - os_event) ~ 1, data = d, conf.type = "log-log"))$table
res <- list(survival = out,
            median_followup = list(median = unname(rev["median"]), lower = unname(rev["0.95LCL"]),
                                   upper = unname(rev["0.95UCL"])),
            r_version = R.version.string, survival_version = as.character(packageVersion("survival")))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), "tests/reference/r_headline.json")
