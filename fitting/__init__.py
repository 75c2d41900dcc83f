"""Models out of data: gain predictors, scaling laws, cost models and calibration."""
