"""Exam pages: student (the portal: home, the exam's page, starting, the attempt, results) and manage (the
instructor's pages: authoring, students, grading)."""
