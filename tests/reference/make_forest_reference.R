# Writes r_forest.json: subgroup forest plot reference numbers (tests/test_forest.py).
# Hazard-ratio form: within each subgroup level, coxph(Surv(time, status) ~ arm) (Efron, Wald CI)
# over the two compared arms, events/n per arm; interaction p = anova(fit_main, fit_int, test = "LRT")
# with fit_main ~ arm + sub and fit_int ~ arm * sub over the patients with a known subgroup level.
# Single-arm form: per subgroup level, survfit(conf.type = "log-log"): S(365) (summary(times = 365,
# extend = TRUE)) and the median with its CI (summary(fit)$table).
# Data: lung.csv (NCCTG lung, status 1 = dead) and synthetic_forest.csv (export_synthetic_forest.py).
suppressPackageStartupMessages({library(survival); library(jsonlite)})
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
if (length(here) == 0 || here == "") here <- "tests/reference"

level_hr <- function(d) {
  n1 <- sum(d$arm == 1); n0 <- sum(d$arm == 0)
  d1 <- sum(d$status[d$arm == 1]); d0 <- sum(d$status[d$arm == 0])
  out <- list(n = n1, events = d1, ref_n = n0, ref_events = d0, hazard_ratio = NA, ci_lower = NA, ci_upper = NA)
  if (n1 > 0 && n0 > 0 && d0 > 0 && d1 > 0) {
    infinite <- FALSE     # R warns "coefficient may be infinite" or "did not converge": not estimable
    fit <- withCallingHandlers(coxph(Surv(time, status) ~ arm, data = d, ties = "efron"), warning = function(w) {
      if (grepl("infinite|did not converge", conditionMessage(w))) infinite <<- TRUE
      invokeRestart("muffleWarning")
    })
    out$coefficient_infinite <- infinite
    if (infinite) return(out)
    b <- unname(coef(fit)); se <- sqrt(unname(vcov(fit)[1, 1]))
    out$hazard_ratio <- exp(b)
    out$ci_lower <- exp(b - qnorm(0.975) * se); out$ci_upper <- exp(b + qnorm(0.975) * se)
    stopifnot(isTRUE(all.equal(unname(summary(fit)$conf.int[1, c(3, 4)]), c(out$ci_lower, out$ci_upper))))
  }
  out
}

forest_field <- function(d, field) {
  sub <- d[[field]]
  sub[is.na(sub)] <- "unknown"
  levels <- sort(unique(sub))
  rows <- lapply(levels, function(lv) c(list(subgroup_level = lv), level_hr(d[sub == lv, ])))
  known <- d[!is.na(d[[field]]), ]
  known$sub <- factor(known[[field]])
  p <- NA; df <- 0; ll <- c(NA, NA)
  if (nlevels(known$sub) >= 2) {
    fit_main <- coxph(Surv(time, status) ~ arm + sub, data = known, ties = "efron")
    fit_int <- coxph(Surv(time, status) ~ arm * sub, data = known, ties = "efron")
    a <- anova(fit_main, fit_int, test = "LRT")
    df <- a$Df[2]; p <- a[["Pr(>|Chi|)"]][2]
    ll <- c(fit_main$loglik[2], fit_int$loglik[2])
  }
  list(field = field, rows = rows, p_interaction = p, df = df, loglik_main = ll[1], loglik_int = ll[2])
}

single_field <- function(d, field) {
  sub <- d[[field]]
  sub[is.na(sub)] <- "unknown"
  lapply(sort(unique(sub)), function(lv) {
    x <- d[sub == lv, ]
    fit <- survfit(Surv(time, status) ~ 1, data = x, conf.type = "log-log")
    s <- summary(fit, times = 365, extend = TRUE)
    tab <- summary(fit)$table
    list(subgroup_level = lv, n = nrow(x), events = sum(x$status), last_time = max(x$time),
         surv_365 = s$surv, surv_365_ci_lower = s$lower, surv_365_ci_upper = s$upper,
         median_days = unname(tab["median"]), median_ci_lower_days = unname(tab["0.95LCL"]),
         median_ci_upper_days = unname(tab["0.95UCL"]))
  })
}

run <- function(d, fields) {
  arms <- d[!is.na(d$arm), ]
  list(hr = lapply(fields, function(f) forest_field(arms, f)),
       single_arm = setNames(lapply(fields, function(f) single_field(d, f)), fields))
}

# (a) NCCTG lung: female (sex 2) vs male (sex 1); ph.ecog 0 / 1 / 2+, age < / >= 65, institution
lung <- read.csv(file.path(here, "lung.csv"))
lung$arm <- ifelse(lung$sex == 2, 1, 0)
lung$ecog <- ifelse(is.na(lung$ph.ecog), NA, ifelse(lung$ph.ecog >= 2, "2+", as.character(lung$ph.ecog)))
lung$age65 <- ifelse(lung$age >= 65, ">= 65", "< 65")
lung$inst <- ifelse(is.na(lung$inst), NA, as.character(lung$inst))
lung_out <- run(lung, c("ecog", "age65", "inst"))

# (b) the synthetic registry's latest cut: BCLC C vs B; the subgroups derived here from the raw fields
syn <- read.csv(file.path(here, "synthetic_forest.csv"), stringsAsFactors = FALSE, na.strings = c("", "NA"))
syn$time <- syn$os_days; syn$status <- syn$os_event
syn$arm <- ifelse(syn$bclc_stage == "C", 1, ifelse(syn$bclc_stage == "B", 0, NA))
syn$ecog_group <- as.character(syn$ecog_ps)
syn$etiology_group <- syn$etiology
syn$age_group <- ifelse(syn$age_years >= 65, ">= 65", "< 65")
syn$afp_group <- ifelse(is.na(syn$afp_ng_ml), NA, ifelse(syn$afp_ng_ml > 400, "> 400", "<= 400"))
syn$tumor_size_group <- ifelse(syn$largest_tumor_cm > 7, "> 7 cm", "<= 7 cm")
syn$up_to_seven_group <- ifelse(syn$is_within_up_to_seven == 1, "within", "beyond")
syn_fields <- c("child_pugh_class", "etiology_group", "ecog_group", "sex", "age_group", "afp_group",
                "tumor_size_group", "up_to_seven_group", "site_id")
syn_out <- run(syn, syn_fields)
syn_all <- syn; syn_all$arm <- 0
syn_out$single_arm <- setNames(lapply(c("bclc_stage", syn_fields), function(f) single_field(syn_all, f)),
                               c("bclc_stage", syn_fields))

out <- list(
  meta = list(r = R.version.string, survival = as.character(packageVersion("survival")),
              jsonlite = as.character(packageVersion("jsonlite")),
              lung = "lung.csv: arm = female (sex 2) vs male (sex 1); ecog = ph.ecog 0/1/2+ (2 and 3), age65, inst",
              synthetic = "synthetic_forest.csv: OS, arm = BCLC C vs B; unknown = NA subgroup value"),
  lung = lung_out, synthetic = syn_out)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), na = "null", pretty = TRUE),
           file.path(here, "r_forest.json"))
