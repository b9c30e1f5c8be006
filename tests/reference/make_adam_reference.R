# Kaplan-Meier OS from the public ADaM test data, computed from ADTTE (+ ADSL dates) with the time
# definition docs/adam.md documents, for tests/test_adam_import.py:
#   time zero = ADTTE OS STARTDT, else ADSL TRTSDT, else TRTSDTM's date, else RANDDT;
#   end date  = ADT, else ADTM's date; event = CNSR == 0;
#   a censored subject's end moves to ADSL LSTALVDT when that is later and not after the cut-off;
#   the data cut: subjects with time zero after the cut-off are out; an end after the cut-off is
#   censored at the cut-off; time = end - time zero in calendar days (not AVAL, which pharmaverse
#   counts as ADT - STARTDT + 1).
# Run: python tests/reference/export_adam_os.py /tmp/adamref && Rscript tests/reference/make_adam_reference.R /tmp/adamref
suppressPackageStartupMessages({library(survival); library(jsonlite)})

args <- commandArgs(trailingOnly = TRUE)
src <- if (length(args)) args[1] else "adam_os_csv"

read_dates <- function(file) {
  d <- read.csv(file.path(src, file), stringsAsFactors = FALSE, na.strings = c("", "NA"))
  for (c in setdiff(names(d), c("USUBJID", "PARAMCD", "CNSR"))) d[[c]] <- as.Date(d[[c]])
  d
}

first_non_na <- function(...) {
  out <- ..1
  for (x in list(...)[-1]) out[is.na(out)] <- x[is.na(out)]
  out
}

km_case <- function(name, cutoff) {
  cutoff <- as.Date(cutoff)
  adsl <- read_dates(paste0(name, "_adsl.csv"))
  tte <- read_dates(paste0(name, "_adtte.csv"))
  os <- tte[tte$PARAMCD == "OS", ]
  d <- merge(os, adsl, by = "USUBJID", all.x = TRUE, suffixes = c("", ".adsl"))
  none <- as.Date(rep(NA, nrow(d)))
  col <- function(x) if (x %in% names(d)) d[[x]] else none
  origin <- first_non_na(col("STARTDT"), col("TRTSDT"), col("TRTSDTM"), col("RANDDT"))
  end <- first_non_na(col("ADT"), col("ADTM"))
  event <- d$CNSR == 0
  lst <- col("LSTALVDT")
  later <- !event & !is.na(lst) & lst > end & lst <= cutoff
  end[later] <- lst[later]
  keep <- origin <= cutoff
  origin <- origin[keep]; end <- end[keep]; event <- event[keep]
  late <- end > cutoff
  event[late] <- FALSE
  end[late] <- cutoff
  time <- as.numeric(end - origin)
  fit <- survfit(Surv(time, event) ~ 1, conf.type = "log-log")
  tab <- summary(fit)$table
  at <- summary(fit, times = c(182, 365, 730), extend = TRUE)
  stopifnot(isTRUE(all.equal(unname(tab["median"]), unname(quantile(fit, 0.5)$quantile))))
  list(source = name, cutoff = format(cutoff), n = unname(tab["records"]), events = unname(tab["events"]),
       median = unname(tab["median"]), median_lower = unname(tab["0.95LCL"]), median_upper = unname(tab["0.95UCL"]),
       times = at$time, n_risk = at$n.risk, surv = at$surv, lower = at$lower, upper = at$upper,
       moved_to_lstalvdt = sum(later), censored_at_cutoff = sum(late))
}

out <- list(
  pharmaverse = km_case("pharmaverse", "2025-01-01"),
  random = km_case("random", "2025-01-01"),
  random_cut_2021_06_30 = km_case("random", "2021-06-30"),
  meta = list(r = R.version.string, survival = as.character(packageVersion("survival")),
              jsonlite = as.character(packageVersion("jsonlite")),
              data = "../shared/testdata pharmaverseadam (adsl, adtte_onco) and random_cdisc_data (cadsl, cadtte), via export_adam_os.py",
              conventions = "survfit(Surv(time, CNSR == 0) ~ 1, conf.type = 'log-log'); median and CI from summary(fit)$table; S(t) from summary(fit, times, extend = TRUE)")
)
args_all <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args_all[grep("^--file=", args_all)])))
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE, na = "null"), file.path(here, "r_adam_os.json"))
cat("wrote", file.path(here, "r_adam_os.json"), "\n")
