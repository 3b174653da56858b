"""Each lesson's graders against its reference, its mistake bank and correct variants; the notebooks' layout."""
