"""DenseLab's library, in floors: each package may import those below it, never one above or beside it
(`.importlinter` holds the rule, `lint-imports` checks it; docs/architecture.md draws it):

    tools                  the commands people run beside the pipeline: the class's fetch and check, the cluster
    report                 the page: its sentences, figures and views
    study | training       the seeds study's numbers and verdicts | one run of an exercise, trained and evaluated
    data                   the datasets' files and the arrays made from them
    core                   what every floor shares: params and their models, records, file layout, languages

The stages (`stages/`, one module each) are the entry points above them all.
"""
