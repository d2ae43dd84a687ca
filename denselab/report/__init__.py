"""The page: the sentences it writes from what the stages found (observations), its figures (drawing), and its
views and Jinja2 environment (page, templates/). It words the study's numbers and verdicts, so it may import
`denselab.study` and `denselab.core`; never the training, whose results it reads from files."""
