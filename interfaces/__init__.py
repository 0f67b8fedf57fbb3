"""Entry points people and scripts use: the ``sohoa`` command line (``interfaces.cli``) and the web app
(``interfaces.web``). They translate between users and the use cases in ``flows``; no domain logic lives here."""
