// name: schema/create_exposure_experiment_index
// An online comparison reads the exposures of one experiment (spotify-engine models online).
// params:
CREATE INDEX exposure_experiment IF NOT EXISTS FOR (n:Exposure) ON (n.experiment)
