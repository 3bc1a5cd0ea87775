def test_healthz_reports_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"portal": "ok", "redis": "ok"}


def test_healthz_survives_a_dead_redis(hotspot_config):
    from dataclasses import replace

    from portal import create_app

    dead = replace(hotspot_config, redis_url="unix:///nonexistent/redis.sock")
    client = create_app({"HOTSPOT": dead, "TESTING": True}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["redis"] == "down"
