"""SDARTS-RS and SDARTS-ADV (Chen & Hsieh, ICML 2020) for nasfw."""
