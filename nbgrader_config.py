# The one nbgrader configuration of the workbook. Stock nbgrader commands run from the
# repository root read it, and so does `workbook` (release, check, grade).
#   nbgrader generate_assignment 01-attention --force   ==   workbook release 01-attention
import os

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

here = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "transformer-workbook"
c.CourseDirectory.root = here
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
# Only notebooks and the files they need are released.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "runs", "*.db"]

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Cell timeout for autograding (nbgrader's default of 30 s is too short for training cells).
c.Execute.timeout = 300
# Keep runaway output from bloating the autograded notebooks.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40
