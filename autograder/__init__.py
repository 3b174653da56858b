"""The course's grading engine, by the stages a submission passes (see README.md in this folder)."""
import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PACKAGE_DIR)      # the course folder: course/, source/, release/, nbgrader_config.py
