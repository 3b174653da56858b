"""The course library students import: data sets, devices, models."""
