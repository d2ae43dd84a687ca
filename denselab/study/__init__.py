"""The seeds study's numbers and the lab's conclusions on trial: the runs read (runs), their statistics, what two
exercises differ in (aspects), the kinds of claim test (claim_tests), their verdict rules (verdicts) and the
section's verdicts (claims). It produces numbers and verdicts and words none of them: the page does
(`denselab.report`), and so imports the study, never the other way. It may import `denselab.core` only."""
