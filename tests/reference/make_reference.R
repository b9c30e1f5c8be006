# Reference numbers from R's survival (and cmprsk) for the Python tests.
#
# Reads  tests/reference/lung.csv   (written by export_lung.py; status 1 = dead, 0 = censored)
# Writes tests/reference/r_survival.json
#
# Regenerate from the repo root:
#   python tests/reference/export_lung.py && Rscript tests/reference/make_reference.R
#
# Needs: r-base-core, r-cran-survival, r-cran-jsonlite, r-cran-cmprsk (optional:
# the cmprsk blocks become null without it).
#
# JSON conventions: numbers are written with 15 significant digits
# (jsonlite digits = I(15)), NA / NaN / Inf -> null.  Vectors are always JSON arrays
# (even of length 1), scalars are JSON scalars.

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

has_cmprsk <- requireNamespace("cmprsk", quietly = TRUE)

# --- locate files -----------------------------------------------------------
args_all <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
here <- if (length(file_arg)) dirname(normalizePath(file_arg)) else "tests/reference"
lung_path <- file.path(here, "lung.csv")
out_path <- file.path(here, "r_survival.json")

# --- helpers ----------------------------------------------------------------
# num(): scalar (NA/NaN/Inf -> NA, written as null)
num <- function(x) {
  x <- as.numeric(x)
  stopifnot(length(x) == 1)
  if (!is.finite(x)) NA_real_ else x
}
# arr(): always a JSON array, elementwise NA/NaN/Inf -> null
arr <- function(x) {
  x <- as.numeric(x)
  x[!is.finite(x)] <- NA_real_
  I(x)  # AsIs: never auto-unboxed
}
int_arr <- function(x) I(as.integer(x))
chr_arr <- function(x) I(as.character(x))

LCL <- "0.95LCL"; UCL <- "0.95UCL"
CONF_TYPES <- c("log-log", "log", "plain")
TIMES_S <- c(182, 365, 730)

# median + CI of one stratum from summary(fit)$table, cross-checked with quantile()
median_block <- function(fit) {
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list("all", names(tab)))
  q <- quantile(fit, probs = 0.5, conf.int = TRUE)
  qm <- as.numeric(q$quantile); ql <- as.numeric(q$lower); qu <- as.numeric(q$upper)
  stopifnot(isTRUE(all.equal(qm, unname(tab[, "median"]))),
            isTRUE(all.equal(ql, unname(tab[, LCL]))),
            isTRUE(all.equal(qu, unname(tab[, UCL]))))
  tab
}

# one KM fit (possibly stratified) -> list of per-group blocks
km_groups <- function(fit, labels) {
  tab <- median_block(fit)
  s <- summary(fit, times = TIMES_S, extend = TRUE)
  strata_s <- if (is.null(s$strata)) rep(rownames(tab)[1], length(s$time)) else as.character(s$strata)
  out <- list()
  for (i in seq_len(nrow(tab))) {
    key <- rownames(tab)[i]
    idx <- which(strata_s == key)
    out[[labels[[key]]]] <- list(
      stratum = key,
      n = num(tab[i, "records"]),
      events = num(tab[i, "events"]),
      median = num(tab[i, "median"]),
      median_lower = num(tab[i, LCL]),
      median_upper = num(tab[i, UCL]),
      at_times = list(
        time = arr(s$time[idx]),
        n_risk = arr(s$n.risk[idx]),
        surv = arr(s$surv[idx]),
        std_err = arr(s$std.err[idx]),
        lower = arr(s$lower[idx]),
        upper = arr(s$upper[idx])
      )
    )
  }
  out
}

step_function <- function(fit) {
  list(
    time = arr(fit$time),
    n_risk = arr(fit$n.risk),
    n_event = arr(fit$n.event),
    n_censor = arr(fit$n.censor),
    surv = arr(fit$surv),
    std_err = arr(fit$std.err),   # survival's std.err = se of the cumulative hazard (log S scale)
    lower = arr(fit$lower),
    upper = arr(fit$upper)
  )
}

# --- lung data --------------------------------------------------------------
lung <- read.csv(lung_path, check.names = FALSE)
stopifnot(nrow(lung) == 228, all(lung$status %in% c(0, 1)), sum(lung$status) == 165)
sex_labels <- list("sex=1" = "male", "sex=2" = "female")
overall_label <- list("all" = "overall")

# a. KM by sex and overall, three CI transforms ------------------------------
km <- list()
for (ct in CONF_TYPES) {
  f_sex <- survfit(Surv(time, status) ~ sex, data = lung, conf.type = ct)
  f_all <- survfit(Surv(time, status) ~ 1, data = lung, conf.type = ct)
  km[[ct]] <- c(km_groups(f_all, overall_label), km_groups(f_sex, sex_labels))
}
fit_all_ll <- survfit(Surv(time, status) ~ 1, data = lung, conf.type = "log-log")
km_step_overall_loglog <- step_function(fit_all_ll)

# b. number at risk / cumulative events / cumulative censored -----------------
fit_sex_ll <- survfit(Surv(time, status) ~ sex, data = lung, conf.type = "log-log")
risk_times <- seq(0, 990, by = 90)

risk_block <- function(times, sub) {
  # explicit counts from the data
  n_risk <- sapply(times, function(t) sum(sub$time >= t))
  cum_ev <- sapply(times, function(t) sum(sub$status == 1 & sub$time <= t))
  cum_ce <- sapply(times, function(t) sum(sub$status == 0 & sub$time <= t))
  ev_at <- sapply(times, function(t) sum(sub$status == 1 & sub$time == t))
  ce_at <- sapply(times, function(t) sum(sub$status == 0 & sub$time == t))
  list(time = arr(times), n_risk = int_arr(n_risk),
       cum_events = int_arr(cum_ev), cum_censored = int_arr(cum_ce),
       events_at_t = int_arr(ev_at), censored_at_t = int_arr(ce_at),
       n_risk_after_t = int_arr(sapply(times, function(t) sum(sub$time > t))))
}

risk_for_fit <- function(times) {
  s <- summary(fit_sex_ll, times = times, extend = TRUE)
  res <- list()
  for (key in names(sex_labels)) {
    code <- as.integer(sub("sex=", "", key))
    b <- risk_block(times, lung[lung$sex == code, ])
    idx <- which(as.character(s$strata) == key)
    # cross-check explicit counts against survival's summary()
    stopifnot(all(s$n.risk[idx] == b$n_risk),
              all(cumsum(s$n.event[idx]) == b$cum_events),
              all(cumsum(s$n.censor[idx]) == b$cum_censored))
    b$surv <- arr(s$surv[idx]); b$lower <- arr(s$lower[idx]); b$upper <- arr(s$upper[idx])
    res[[sex_labels[[key]]]] <- b
  }
  b <- risk_block(times, lung)
  s1 <- summary(fit_all_ll, times = times, extend = TRUE)
  stopifnot(all(s1$n.risk == b$n_risk))
  b$surv <- arr(s1$surv); b$lower <- arr(s1$lower); b$upper <- arr(s1$upper)
  res$overall <- b
  res
}

# tied death times (>= 2 deaths at the same time), overall and within each sex
tie_tab <- table(lung$time[lung$status == 1])
tied_all <- as.numeric(names(tie_tab)[tie_tab >= 2])
tied_by_sex <- lapply(c(1, 2), function(code) {
  tt <- table(lung$time[lung$status == 1 & lung$sex == code])
  as.numeric(names(tt)[tt >= 2])
})
# death times that are also censoring times (event tied with a censoring)
ev_cens_ties <- sort(intersect(lung$time[lung$status == 1], lung$time[lung$status == 0]))
# pick a few: the first triple tie (11), 163 (triple tie), and the sex-specific ties
tied_pick <- sort(unique(c(11, 163, tied_by_sex[[1]][1:3], tied_by_sex[[2]])))

risk_table <- list(
  convention = paste(
    "n_risk at t counts subjects with time >= t (survival's summary(fit, times=t)$n.risk);",
    "cum_events / cum_censored count status==1 / status==0 with time <= t;",
    "events_at_t / censored_at_t are exact ties at t; n_risk_after_t counts time > t.",
    "surv/lower/upper are from summary(fit, times, extend=TRUE) with conf.type='log-log'",
    "(S(t) right-continuous: includes deaths at t)."),
  grid = risk_for_fit(risk_times),
  tied_event_times = list(
    note = "times where >= 2 deaths tie (some within one sex); n_risk still counts time >= t, i.e. includes those dying at t",
    all_tied_death_times_overall = arr(tied_all),
    tied_death_times_male = arr(tied_by_sex[[1]]),
    tied_death_times_female = arr(tied_by_sex[[2]]),
    death_times_also_censoring_times = arr(ev_cens_ties),
    table = risk_for_fit(tied_pick)
  )
)

# c. log-rank -----------------------------------------------------------------
logrank_block <- function(sd, labels) {
  df <- length(sd$n) - 1
  chisq <- sd$chisq
  list(
    group = chr_arr(labels),
    n = arr(as.numeric(sd$n)),
    observed = arr(sd$obs),
    expected = arr(sd$exp),
    var = lapply(seq_len(nrow(sd$var)), function(i) arr(sd$var[i, ])),
    chisq = num(chisq),
    df = num(df),
    p = num(pchisq(chisq, df, lower.tail = FALSE)),
    p_survival_pvalue = num(if (!is.null(sd$pvalue)) sd$pvalue else NA)
  )
}
sd_sex <- survdiff(Surv(time, status) ~ sex, data = lung)
lung_ecog <- lung[!is.na(lung$ph.ecog), ]
sd_ecog <- survdiff(Surv(time, status) ~ ph.ecog, data = lung_ecog)
logrank <- list(
  sex = c(logrank_block(sd_sex, names(sd_sex$n)), list(rows_used = nrow(lung))),
  ph.ecog = c(logrank_block(sd_ecog, names(sd_ecog$n)),
              list(rows_used = nrow(lung_ecog),
                   note = "row(s) with NA ph.ecog dropped; level 3 has a single patient"))
)

# d. Cox ----------------------------------------------------------------------
cox_block <- function(fit, nrows) {
  sm <- summary(fit)
  co <- sm$coefficients; ci <- sm$conf.int
  levels <- lapply(seq_len(nrow(co)), function(i) list(
    term = rownames(co)[i],
    coef = num(co[i, "coef"]),
    se = num(co[i, "se(coef)"]),
    hr = num(co[i, "exp(coef)"]),
    hr_lower = num(ci[i, "lower .95"]),
    hr_upper = num(ci[i, "upper .95"]),
    z = num(co[i, "z"]),
    wald_p = num(co[i, "Pr(>|z|)"])
  ))
  names(levels) <- rownames(co)
  list(ties = fit$method, n = num(fit$n), events = num(fit$nevent),
       levels = levels,
       loglik = arr(fit$loglik),
       lrt = list(stat = num(sm$logtest["test"]), df = num(sm$logtest["df"]), p = num(sm$logtest["pvalue"])),
       wald = list(stat = num(sm$waldtest["test"]), df = num(sm$waldtest["df"]), p = num(sm$waldtest["pvalue"])),
       score = list(stat = num(sm$sctest["test"]), df = num(sm$sctest["df"]), p = num(sm$sctest["pvalue"])),
       rows_used = nrows)
}
cox <- list(
  note = "HR = exp(coef) of each non-reference level vs the first level; 95% CI = exp(coef +/- 1.959964 se); Wald p = 2*pnorm(-|z|)",
  sex = c(cox_block(coxph(Surv(time, status) ~ factor(sex), data = lung), nrow(lung)),
          list(reference = "sex=1 (male)")),
  ph.ecog = c(cox_block(coxph(Surv(time, status) ~ factor(ph.ecog), data = lung_ecog), nrow(lung_ecog)),
              list(reference = "ph.ecog=0"))
)
cox_breslow_sex <- coxph(Surv(time, status) ~ factor(sex), data = lung, ties = "breslow")
cox$sex_breslow <- cox_block(cox_breslow_sex, nrow(lung))

# e. reverse KM follow-up -----------------------------------------------------
rkm_all <- survfit(Surv(time, 1 - status) ~ 1, data = lung, conf.type = "log-log")
rkm_sex <- survfit(Surv(time, 1 - status) ~ sex, data = lung, conf.type = "log-log")
med_only <- function(fit, labels) {
  tab <- median_block(fit)
  out <- list()
  for (i in seq_len(nrow(tab))) out[[labels[[rownames(tab)[i]]]]] <- list(
    n = num(tab[i, "records"]), censorings_as_events = num(tab[i, "events"]),
    median = num(tab[i, "median"]), median_lower = num(tab[i, LCL]), median_upper = num(tab[i, UCL]))
  out
}
reverse_km <- c(list(
  method = "survfit(Surv(time, 1 - status) ~ ..., conf.type = 'log-log'): censorings are the events, deaths censor"),
  med_only(rkm_all, overall_label), med_only(rkm_sex, sex_labels))

# f. tiny data sets with S(t) exactly 0.5 over a flat step ---------------------
tiny_sets <- list(
  tiny_a = list(time = c(1, 2, 3, 4), status = c(1, 1, 0, 1)),
  tiny_b = list(time = c(5, 10, 15, 20, 25, 30), status = c(1, 1, 1, 0, 1, 0)),
  tiny_c = list(time = c(1, 2, 3, 4), status = c(1, 1, 1, 1))
)
tiny <- list(note = paste(
  "KM median = smallest t with S(t) <= 0.5, except when S(t) == 0.5 exactly over a flat step:",
  "then survival reports the midpoint of that step (time where S hits 0.5 and the next event time).",
  "CI limits use the same rule on the lower/upper curves."))
for (nm in names(tiny_sets)) {
  d <- as.data.frame(tiny_sets[[nm]])
  blk <- list(data = list(time = arr(d$time), status = arr(d$status)))
  for (ct in c("log-log", "log", "plain")) {
    f <- survfit(Surv(time, status) ~ 1, data = d, conf.type = ct)
    tab <- median_block(f)
    blk[[ct]] <- list(median = num(tab[1, "median"]), median_lower = num(tab[1, LCL]),
                      median_upper = num(tab[1, UCL]), step = step_function(f))
  }
  f <- survfit(Surv(time, status) ~ 1, data = d)
  flat <- which(abs(f$surv - 0.5) < 1e-12)
  blk$flat_at_half <- if (length(flat)) list(from = num(f$time[min(flat)]),
    to = num(if (max(flat) < length(f$time)) f$time[max(flat) + 1] else NA)) else NULL
  tiny[[nm]] <- blk
}

# g. Clopper-Pearson -----------------------------------------------------------
binom <- lapply(list(c(12, 40), c(0, 25), c(25, 25), c(33, 57)), function(xn) {
  b <- binom.test(xn[1], xn[2])
  list(x = xn[1], n = xn[2], estimate = num(b$estimate),
       lower = num(b$conf.int[1]), upper = num(b$conf.int[2]), conf_level = 0.95)
})

# h. competing risks -------------------------------------------------------------
# 20 patients; 0 = censored, 1 = downstaging (event of interest), 2 = death (competing).
# Ties: t=3 has cause 1, cause 2 and a censoring; t=8 has two cause-1 and one cause-2;
# t=12 has cause 2 and a censoring; t=14 has two cause-1 (one per group).
cr <- data.frame(
  id     = 1:20,
  time   = c(2, 3, 3, 3, 5, 6, 7, 8, 8, 8, 10, 11, 12, 12, 14, 14, 16, 18, 20, 22),
  status = c(1, 1, 2, 0, 1, 0, 2, 1, 1, 2,  0,  1,  2,  0,  1,  1,  0,  1,  2,  0),
  group  = c("A", "A", "A", "A", "B", "A", "B", "A", "B", "A",
             "B", "A", "B", "B", "A", "B", "A", "B", "A", "B")
)
cr$state <- factor(cr$status, levels = 0:2, labels = c("cens", "ds", "death"))

ms_block <- function(fit, conf_type_label) {
  # columns of pstate: "(s0)" = still in initial state, "ds", "death"
  st <- fit$states
  j1 <- which(st == "ds"); j2 <- which(st == "death")
  get_strata <- function() {
    if (is.null(fit$strata)) return(list(all = seq_along(fit$time)))
    ends <- cumsum(fit$strata); starts <- c(1, head(ends, -1) + 1)
    setNames(lapply(seq_along(ends), function(k) starts[k]:ends[k]), names(fit$strata))
  }
  out <- list()
  for (nm in names(get_strata())) {
    idx <- get_strata()[[nm]]
    ne <- fit$n.event[idx, , drop = FALSE]
    out[[nm]] <- list(
      time = arr(fit$time[idx]),
      n_risk = arr(fit$n.risk[idx, 1]),
      n_event_ds = arr(ne[, j1]), n_event_death = arr(ne[, j2]),
      n_censor = arr(fit$n.censor[idx]),
      cif_ds = arr(fit$pstate[idx, j1]),
      cif_ds_std_err = arr(fit$std.err[idx, j1]),
      cif_ds_lower = arr(fit$lower[idx, j1]),
      cif_ds_upper = arr(fit$upper[idx, j1]),
      cif_death = arr(fit$pstate[idx, j2]),
      cif_death_std_err = arr(fit$std.err[idx, j2]),
      cif_death_lower = arr(fit$lower[idx, j2]),
      cif_death_upper = arr(fit$upper[idx, j2]),
      prob_initial_state = arr(fit$pstate[idx, which(!(st %in% c("ds", "death")))])
    )
  }
  c(list(conf_type = conf_type_label), out)
}

ms_default <- survfit(Surv(time, state) ~ 1, data = cr)
stopifnot(ms_default$conf.type == "log")
ms_all <- list(default_log = ms_block(ms_default, ms_default$conf.type))
for (ct in c("log-log", "plain")) ms_all[[ct]] <- ms_block(survfit(Surv(time, state) ~ 1, data = cr, conf.type = ct), ct)
ms_grp_default <- survfit(Surv(time, state) ~ group, data = cr)
ms_grp <- list(default_log = ms_block(ms_grp_default, ms_grp_default$conf.type))
for (ct in c("log-log", "plain")) ms_grp[[ct]] <- ms_block(survfit(Surv(time, state) ~ group, data = cr, conf.type = ct), ct)

cuminc_block <- function(ci, times) {
  tp <- cmprsk::timepoints(ci, times)
  comps <- setdiff(names(ci), "Tests")
  curves <- lapply(comps, function(nm) list(
    name = nm,
    raw_time = arr(ci[[nm]]$time), raw_est = arr(ci[[nm]]$est), raw_var = arr(ci[[nm]]$var),
    est_at_event_times = arr(tp$est[nm, ]), var_at_event_times = arr(tp$var[nm, ])))
  names(curves) <- comps
  res <- list(event_times = arr(times), curves = curves)
  if (!is.null(ci$Tests)) res$gray_test <- lapply(seq_len(nrow(ci$Tests)), function(i) list(
    cause = rownames(ci$Tests)[i], stat = num(ci$Tests[i, "stat"]),
    p = num(ci$Tests[i, "pv"]), df = num(ci$Tests[i, "df"])))
  res
}
ev_times <- sort(unique(cr$time[cr$status != 0]))
cmprsk_all <- if (has_cmprsk) cuminc_block(cmprsk::cuminc(cr$time, cr$status, cencode = 0), ev_times) else NULL
cmprsk_grp <- if (has_cmprsk) cuminc_block(cmprsk::cuminc(cr$time, cr$status, group = cr$group, cencode = 0), ev_times) else NULL

competing <- list(
  data = list(id = int_arr(cr$id), time = arr(cr$time), status = int_arr(cr$status), group = chr_arr(cr$group)),
  coding = "status 0 = censored, 1 = downstaging (event of interest, state 'ds'), 2 = death (competing, state 'death')",
  survival_multistate = list(
    call = "survfit(Surv(time, factor(status, 0:2, c('cens','ds','death'))) ~ 1 [or ~ group], data = cr, conf.type = ...)",
    ci_note = paste(
      "Aalen-Johansen estimate; fit$pstate columns are (s0), ds, death.",
      "std.err is survival's infinitesimal-jackknife (robust) SE of pstate on the probability scale.",
      "Default conf.type for multi-state survfit is 'log': lower = p*exp(-z*se/p), upper = min(1, p*exp(z*se/p)),",
      "z = qnorm(0.975); with p == 0 the log CI is NA (null)."),
    overall = ms_all,
    by_group = ms_grp
  ),
  cmprsk = if (has_cmprsk) list(
    version = as.character(packageVersion("cmprsk")),
    call = "cmprsk::cuminc(time, status, cencode = 0) [and group = group]; est/var at event times via cmprsk::timepoints()",
    note = paste("curve names are '<group> <cause>': overall (no group) cuminc uses the dummy group '1', so '1 1' = downstaging, '1 2' = death;",
                 "by group: 'A 1', 'B 1', 'A 2', 'B 2'. var is cuminc's own (asymptotic, Aalen-type) variance of the CIF, not survival's IJ variance;",
                 "raw_* are cuminc's own step points (each jump listed twice); est at t includes jumps at t."),
    overall = cmprsk_all, by_group = cmprsk_grp) else NULL
)

# --- assemble -------------------------------------------------------------------
result <- list(
  meta = list(
    r_version = R.version.string,
    survival_version = as.character(packageVersion("survival")),
    cmprsk_version = if (has_cmprsk) as.character(packageVersion("cmprsk")) else NA,
    jsonlite_version = as.character(packageVersion("jsonlite")),
    generated_by = "tests/reference/make_reference.R",
    lung_source = "tests/reference/lung.csv from lifelines.datasets.load_lung(); status 1 = dead, 0 = censored; sex 1 = male, 2 = female",
    number_format = "15 significant digits; NA/NaN/Inf -> null",
    conventions = list(
      conf_level = 0.95,
      km_ci = "survfit conf.type applied to S(t) with Greenwood variance: 'log-log' (= Python/lifelines exponential Greenwood), 'log', 'plain'",
      median = paste("smallest t with S(t) <= 0.5; if S(t) == 0.5 exactly (tolerance sqrt(.Machine$double.eps)) on a flat step, the midpoint between",
                     "the time S reaches 0.5 and the next event time. median_lower = same rule applied to the lower band, median_upper = same rule on the upper band.",
                     "null = not reached"),
      at_risk = "n.risk at t = #{time >= t}",
      cumulative_counts = "#{time <= t}",
      survival_at_times = "summary(fit, times, extend = TRUE); S is right-continuous",
      logrank_p = "pchisq(chisq, df, lower.tail = FALSE), df = number of groups - 1"
    )
  ),
  lung_km = list(
    call = "survfit(Surv(time, status) ~ sex | ~ 1, data = lung, conf.type = X)",
    by_conf_type = km,
    overall_step_function_loglog = km_step_overall_loglog
  ),
  lung_risk_table = risk_table,
  lung_logrank = logrank,
  lung_cox = cox,
  lung_reverse_km = reverse_km,
  tiny_km = tiny,
  binom_clopper_pearson = binom,
  competing_risks = competing
)

txt <- toJSON(result, auto_unbox = TRUE, digits = I(15), na = "null", null = "null", pretty = TRUE)
writeLines(txt, out_path)
cat("wrote", out_path, "\n")

# --- sanity print -------------------------------------------------------------
for (ct in CONF_TYPES) for (g in c("male", "female")) {
  b <- km[[ct]][[g]]
  cat(sprintf("%-8s %-7s n=%d events=%d median=%s (%s, %s)\n", ct, g, b$n, b$events,
              b$median, b$median_lower, b$median_upper))
}
cat(sprintf("log-rank sex: chisq=%.6f df=%d p=%.6g\n", logrank$sex$chisq, logrank$sex$df, logrank$sex$p))
hs <- cox$sex$levels[[1]]
cat(sprintf("Cox female vs male: HR=%.6f (%.6f, %.6f) p=%.6g\n", hs$hr, hs$hr_lower, hs$hr_upper, hs$wald_p))
