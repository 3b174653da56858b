"""Where the student's code runs: the judge's handle on it (``student``), the box around it (``isolation``,
``warm``) and the library it may import (``library``). ``inside/`` is the only code that runs in the
student's process; nothing here imports the judge. (Inside the box this file is staged empty.)"""
