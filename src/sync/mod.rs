//! Sync and telemetry over MQTT (the only module that imports rumqttc).
